// The embedded ClickHouse engine as a native library (npm chdb, libchdb)
// behind the same framed protocol as engine.mjs (frames.mjs). The default
// engine: start.sh installs it into native/node_modules and falls back to
// chdb-wasm only where it does not install or start.
//
// Differences from the wasm engine, none visible through chlocal:
// - data lives in a directory on disk (STATUSTRACE_LOCAL_DATA), kept across
//   restarts, with background merges and TTL, not in memory;
// - requests run concurrently: libchdb serves several connections to one
//   data directory in parallel (one embedded server), each with its own
//   settings, parameters and temporary tables. Requests without a session
//   take an idle connection from a pool (at most POOL at once, default 1);
//   an HTTP session keeps a connection of its own, its requests one after
//   another; an INSERT with async_insert runs on a connection of its own
//   (lane "async") beside the shared ones;
// - INSERT data goes through a file of the request's own in the data
//   directory, not the engine's virtual file system: the statement's INFILE
//   path is rewritten to it.
import { createRequire } from 'node:module';
import { mkdirSync, writeFileSync, rmSync, readdirSync, readFileSync } from 'node:fs';
import { setPriority } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve, runStatements } from './frames.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(here, 'native', 'package.json'));
const { Session } = require('chdb');

const dataDir = process.env.STATUSTRACE_LOCAL_DATA;
if (!dataDir) throw new Error('STATUSTRACE_LOCAL_DATA is not set (start.sh sets it)');
const uploads = join(dataDir, '.statustrace-uploads');
rmSync(uploads, { recursive: true, force: true }); // left by a killed engine
mkdirSync(uploads, { recursive: true });
let uploadSeq = 0;

// Server settings, given when the first connection starts the embedded
// server: a dropped table's files go at once rather than after 8 minutes
// (tests and benchmarks drop a database each; with the data kept across
// restarts they would fill the disk).
//
// STATUSTRACE_LOCAL_CONFIG, when set, is a ClickHouse server configuration
// file the engine loads (e.g. remote_servers: a cluster of other local
// endpoints for Distributed tables and cluster(); deploy/shard).
const serverArgs = ['--database_atomic_delay_before_drop_table_sec=0'];
if (process.env.STATUSTRACE_LOCAL_CONFIG) serverArgs.push(`--config-file=${process.env.STATUSTRACE_LOCAL_CONFIG}`);
const open = () => new Session(dataDir, { connectionArgs: serverArgs });

// newPool hands out at most max connections, opened when first needed and
// kept for reuse; a caller past max waits for one to come back.
function newPool(max) {
  const all = [];
  const idle = [];
  const waiting = [];
  return {
    all,
    async acquire() {
      if (idle.length) return idle.pop();
      if (all.length < max) {
        const c = open();
        all.push(c);
        return c;
      }
      return new Promise((resolve) => waiting.push(resolve));
    },
    release(c) {
      const next = waiting.shift();
      if (next) next(c);
      else idle.push(c);
    },
  };
}

// POOL connections serve requests without a session (STATUSTRACE_LOCAL_POOL,
// default 1). With more, a query runs beside an insert; but then, as on a
// server, a reader can see an INSERT's rows in its table before the rows its
// materialized views write, and tests that read right after an insert
// (exporter/pipeline_test.go) assume both at once: 1 keeps them exact.
const POOL = Math.max(1, Number.parseInt(process.env.STATUSTRACE_LOCAL_POOL ?? '1', 10) || 1);
const shared = newPool(POOL);
shared.release(await shared.acquire()); // the first connection starts the embedded server now

// Lane "async": INSERTs the client sent with async_insert (chlocal marks
// them): bulk rows nobody waits to read, such as otel_traces. They run on
// connections of the lane's own, beside the shared one, instead of queueing
// the real-time status inserts and lookups behind them. At most 8 run at
// once: a client flooding async inserts must not open connections, each
// with its own threads, without bound.
const asyncLane = newPool(8);

// Background merges run at a lower CPU priority (nice, Linux only) than
// queries: the embedded engine shares its cores with the scheduler and the
// collector, and a merge, which can wait, otherwise takes the CPU an INSERT
// or a status lookup waits for. Merges still take every idle cycle, and
// their share under contention (nice 10: about a tenth of a query
// thread's) keeps parts from piling up at the rates make bench drives.
// STATUSTRACE_LOCAL_MERGE_NICE sets it (0 turns it off).
const MERGE_NICE = Number.parseInt(process.env.STATUSTRACE_LOCAL_MERGE_NICE ?? '10', 10) || 0;
// A thread's name is read on every pass, not once: a thread of ClickHouse's
// global pool takes the name of the job it runs, so one that stops merging
// gets its priority back, and threads that ended are forgotten.
const reniced = new Set();
function reniceMerges() {
  let tids;
  try {
    tids = readdirSync('/proc/self/task');
  } catch {
    return false; // not Linux
  }
  const alive = new Set(tids);
  for (const tid of reniced) if (!alive.has(tid)) reniced.delete(tid);
  for (const tid of tids) {
    try {
      const merging = readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').startsWith('MergeMutate');
      if (merging === reniced.has(tid)) continue;
      setPriority(Number(tid), merging ? MERGE_NICE : 0);
      if (merging) reniced.add(tid);
      else reniced.delete(tid);
    } catch {
      // the thread ended, or the priority cannot be set: leave it
    }
  }
  return true;
}
if (MERGE_NICE > 0 && reniceMerges()) setInterval(reniceMerges, 2000).unref();

const sessions = new Map(); // session id -> {conn, tail: Promise}

// withConn runs fn on the request's connection: the session's own (its
// requests one at a time), one of the async lane, or a pooled one.
async function withConn(session, lane, fn) {
  if (!session) {
    const p = lane === 'async' ? asyncLane : shared;
    const conn = await p.acquire();
    try {
      return await fn(conn);
    } finally {
      p.release(conn);
    }
  }
  let s = sessions.get(session);
  if (!s) {
    s = { conn: open(), tail: Promise.resolve() };
    sessions.set(session, s);
  }
  const run = s.tail.then(() => fn(s.conn));
  s.tail = run.catch(() => {});
  return run;
}

await serve({
  name: 'native',
  concurrent: true,
  async close(session) {
    const s = sessions.get(session);
    sessions.delete(session);
    if (s) {
      await s.tail;
      s.conn.close();
    }
  },
  async exec(session, statements, reset, file, body, lane) {
    const upload = file ? join(uploads, `insert-${++uploadSeq}.data`) : null;
    if (file) writeFileSync(upload, body);
    try {
      return await withConn(session, lane, async (conn) => {
        const query = (st) => conn.queryAsync(file ? st.sql.split(file).join(upload) : st.sql, { format: st.format || 'TabSeparated' });
        const last = await runStatements(query, statements, reset);
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
      });
    } finally {
      if (file) rmSync(upload, { force: true });
    }
  },
  async info() {
    const r = await shared.all[0].queryAsync('SELECT version(), displayName(), timezone()', { format: 'JSONCompactEachRow' });
    return JSON.parse(r.text());
  },
  async shutdown() {
    for (const s of sessions.values()) s.conn.close();
    for (const c of [...shared.all, ...asyncLane.all]) c.close();
  },
});
