// The embedded ClickHouse engine as a native library (npm chdb, libchdb)
// behind the same framed protocol as engine.mjs (frames.mjs). The default
// engine: start.sh installs it into native/node_modules and falls back to
// chdb-wasm only where it does not install or start.
//
// Differences from the wasm engine, none visible through chlocal:
// - data lives in a directory on disk (STATUSTRACE_LOCAL_DATA), kept across
//   restarts, with background merges and TTL, not in memory;
// - requests run one at a time (libchdb could serve several connections to
//   one data folder in parallel, see deploy/local/README.md): requests
//   without a session on one shared connection (chlocal resets a request's
//   settings after it), each HTTP session on a connection of its own;
// - INSERT data goes through a file in the data directory, not the engine's
//   virtual file system: the statement's INFILE path is rewritten to it.
import { createRequire } from 'node:module';
import { mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve, runStatements } from './frames.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(here, 'native', 'package.json'));
const { Session } = require('chdb');

const dataDir = process.env.STATUSTRACE_LOCAL_DATA;
if (!dataDir) throw new Error('STATUSTRACE_LOCAL_DATA is not set (start.sh sets it)');
mkdirSync(dataDir, { recursive: true });
const upload = join(dataDir, '.statustrace-insert.data');
// Server settings, given when the connection starts the embedded server: a
// dropped table's files go at once rather than after 8 minutes (tests and
// benchmarks drop a database each; with the data kept across restarts they
// would fill the disk).
const open = () => new Session(dataDir, { connectionArgs: ['--database_atomic_delay_before_drop_table_sec=0'] });
const shared = open(); // requests without a session
// An HTTP session gets a connection of its own (its own settings and
// temporary tables), on the same embedded server and data.
const sessions = new Map(); // session id -> Session

function connFor(session) {
  if (!session) return shared;
  let c = sessions.get(session);
  if (!c) {
    c = open();
    sessions.set(session, c);
  }
  return c;
}

await serve({
  name: 'native',
  async close(session) {
    const c = sessions.get(session);
    sessions.delete(session);
    if (c) c.close();
  },
  async exec(session, statements, reset, file, body) {
    const conn = connFor(session);
    if (file) writeFileSync(upload, body);
    let last = null;
    try {
      const query = (st) => conn.queryAsync(file ? st.sql.split(file).join(upload) : st.sql, { format: st.format || 'TabSeparated' });
      last = await runStatements(query, statements, reset);
    } finally {
      if (file) rmSync(upload, { force: true });
    }
    return {
      rows: last?.rowsRead ?? 0,
      bytes: last?.bytesRead ?? 0,
      // The binding's rowsRead counts result rows; libchdb's storage read
      // counters are not exposed, so the endpoint reports none (null).
      scannedRows: null,
      scannedBytes: null,
      elapsed: last?.elapsed ?? 0,
      data: last ? last.bytes() : null,
    };
  },
  async info() {
    const r = await shared.queryAsync('SELECT version(), displayName(), timezone()', { format: 'JSONCompactEachRow' });
    return JSON.parse(r.text());
  },
  async shutdown() {
    for (const c of sessions.values()) c.close();
    shared.close();
  },
});
