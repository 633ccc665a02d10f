// The embedded ClickHouse engine as a native library (npm chdb, libchdb)
// behind the same framed protocol as engine.mjs (frames.mjs). The default
// engine: start.sh installs it into native/node_modules and falls back to
// chdb-wasm only where it does not install or start.
//
// Differences from the wasm engine, none visible through chlocal:
// - data lives in a directory on disk (STATUSTRACE_LOCAL_DATA), kept across
//   restarts, with background merges and TTL, not in memory;
// - one connection serves every request, one at a time (libchdb could serve
//   several connections to one data folder in parallel, see
//   deploy/local/README.md), so every HTTP session shares it; chlocal resets
//   a request's settings after it, as for the shared wasm connection;
// - INSERT data goes through a file in the data directory, not the engine's
//   virtual file system: the statement's INFILE path is rewritten to it.
import { createRequire } from 'node:module';
import { mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve } from './frames.mjs';

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
const session = new Session(dataDir, { connectionArgs: ['--database_atomic_delay_before_drop_table_sec=0'] });

await serve({
  name: 'native',
  async close() {}, // one shared connection: nothing per session to close
  async exec(_session, statements, file, body) {
    if (file) writeFileSync(upload, body);
    let last = null;
    try {
      for (const st of statements) {
        const sql = file ? st.sql.split(file).join(upload) : st.sql;
        last = await session.queryAsync(sql, { format: st.format || 'TabSeparated' });
      }
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
    const r = await session.queryAsync('SELECT version(), displayName(), timezone()', { format: 'JSONCompactEachRow' });
    return JSON.parse(r.text());
  },
  async shutdown() {
    session.close();
  },
});
