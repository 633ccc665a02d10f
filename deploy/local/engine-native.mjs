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
//   path is rewritten to it;
// - a connection without a session keeps its database and settings for the
//   next request, which skips the USE and SETs already in effect (runCached).
import { createRequire } from 'node:module';
import { mkdirSync, writeFileSync, rmSync, readdirSync, readFileSync } from 'node:fs';
import { setPriority } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve, runStatements, log } from './frames.mjs';

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
    // replace closes c, whose state is unknown, and releases a fresh
    // connection in its place (opened first: the embedded server must not
    // lose its last connection).
    replace(c) {
      let fresh;
      try {
        fresh = open();
      } catch (e) {
        log(`cannot open a connection to replace one: ${e?.message ?? e}`);
        return this.release(c);
      }
      all[all.indexOf(c)] = fresh;
      c.close();
      this.release(fresh);
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
// or a status lookup waits for. Merges still take every idle cycle. Nice 19
// rather than 10: under make bench's freshness load (load average about 4.5
// on 2 cores) a merge of otel_traces (3-4 s) beside merges of the status
// tables held status inserts back for seconds; p99 freshness was 808-1455
// ms over 8 runs at nice 10 and 719-1013 over 7 at nice 19. Inserts of
// 10,000 rows make a part each, far below the 1,000 parts per partition at
// which ClickHouse delays inserts, so merges that wait cost nothing.
// STATUSTRACE_LOCAL_MERGE_NICE sets it (0 turns it off).
const MERGE_NICE = Number.parseInt(process.env.STATUSTRACE_LOCAL_MERGE_NICE ?? '19', 10) || 0;
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

// Connections without a session (the shared pool, lane "async") keep what
// chlocal's prelude (USE, then SET for each setting and parameter) left on
// them for the next request: each of those statements costs 0.2-2 ms in the
// engine, and consecutive requests mostly send the same ones. A connection's
// state: db, the database of its last USE, valid while dbGeneration is
// dbGen; set, name (as sent) -> {value (the literal as sent), reset (the SET
// ... = DEFAULT that undoes it; none for a parameter, which chlocal never
// resets: it refuses a query that names a parameter it was not given)}.
// Every setting not in set is at its default. No entry: nothing known.
const states = new WeakMap();

// dbGeneration counts statements, on any connection, that may drop or rename
// a database (all but reads and inserts): skipping a USE of a database that
// is gone would let a request run that USE would have failed.
let dbGeneration = 0;

const ident = '(`(?:[^`\\\\]|\\\\.)*`|\\w+)'; // as chlocal's quoteIdent writes it
const useRe = new RegExp(`^USE ${ident}$`);
const setRe = new RegExp(`^SET ${ident} = ([\\s\\S]+)$`);
const resetRe = new RegExp(`^SET ${ident} = DEFAULT$`);
const unquote = (id) => (id.startsWith('`') ? id.slice(1, -1).replace(/\\(.)/g, '$1') : id);

// What may precede a statement's first keyword: blanks, comments, parentheses.
const leadingRe = /^(?:\s+|--[^\n]*(?:\n|$)|#[^\n]*(?:\n|$)|\/\*[\s\S]*?\*\/|\()*/;
const readWords = new Set(['SELECT', 'WITH', 'INSERT', 'DESCRIBE', 'DESC', 'SHOW', 'EXISTS', 'EXPLAIN', 'CHECK']);
const ddlWords = new Set(['CREATE', 'DROP', 'ALTER', 'TRUNCATE', 'RENAME', 'OPTIMIZE', 'ATTACH', 'DETACH', 'SYSTEM', 'KILL']);

// statementKind tells what a request's main statement may do to its
// connection: 'read' (reads or inserts) and 'ddl' (may also drop a database)
// leave its settings and database alone; 'other' is anything else: SET,
// USE, SET ROLE, transactions, several statements in one (libchdb runs them
// all), or a statement not known here.
function statementKind(sql) {
  const rest = sql.slice(leadingRe.exec(sql)[0].length);
  if (/;\s*\S/.test(rest)) return 'other';
  const word = /^[A-Za-z]+/.exec(rest)?.[0].toUpperCase();
  return readWords.has(word) ? 'read' : ddlWords.has(word) ? 'ddl' : 'other';
}

// prelude reads a request's statements before the main one as chlocal
// writes them ({db} for USE, {name, value, reset} for SET, reset from the
// request's reset statements); null for anything else.
function prelude(statements, reset) {
  const pre = [];
  for (const st of statements.slice(0, -1)) {
    let m = useRe.exec(st.sql);
    if (m) {
      pre.push({ db: unquote(m[1]), st });
      continue;
    }
    if (!(m = setRe.exec(st.sql))) return null;
    pre.push({ name: m[1], value: m[2], st, reset: null });
  }
  for (const st of reset ?? []) {
    const m = resetRe.exec(st.sql);
    const p = m && pre.find((p) => p.name === m[1]);
    if (!p) return null;
    p.reset = st;
  }
  return pre;
}

// runCached runs a request on a connection without a session. It first
// resets the settings the connection keeps that this request does not set
// (lazily: the request that set them did not), then runs its USE and SETs
// unless already in effect, then its main statement, and keeps what it set
// instead of running its reset statements. A request it cannot follow (not
// chlocal's prelude, or kind 'other': withConn then replaces the
// connection) or one that fails runs its reset statements as always and
// leaves the state unknown: the next request runs everything.
async function runCached(conn, query, statements, reset, kind) {
  const had = states.get(conn) ?? { db: null, dbGen: -1, set: new Map() };
  states.delete(conn); // set again only when the request succeeds
  const pre = kind === 'other' ? null : prelude(statements, reset);
  const next = { db: had.db, dbGen: had.dbGen, set: new Map() };
  for (const [name, v] of had.set) {
    if (!v.reset) next.set.set(name, v); // a parameter: left as it is
    else if (pre?.find((p) => p.name === name)?.reset) next.set.set(name, v); // set again or kept below
    else await query(v.reset).catch(() => {}); // errors ignored, as for reset statements
  }
  if (!pre) return runStatements(query, statements, reset);
  const gen = dbGeneration;
  try {
    for (const p of pre) {
      if (p.db !== undefined) {
        if (next.db === p.db && next.dbGen === gen) continue;
        await query(p.st);
        next.db = p.db;
        next.dbGen = gen;
      } else if (next.set.get(p.name)?.value !== p.value) {
        await query(p.st); // a SET that fails is not kept: no state is kept then
        next.set.set(p.name, { value: p.value, reset: p.reset });
      }
    }
    const last = await query(statements.at(-1));
    states.set(conn, next);
    return last;
  } catch (e) {
    for (const st of reset ?? []) await query(st).catch(() => {});
    throw e;
  }
}

const sessions = new Map(); // session id -> {conn, tail: Promise}

// withConn runs fn on the request's connection: the session's own (its
// requests one at a time), one of the async lane, or a pooled one; a pooled
// one is replaced afterwards when untracked (its main statement may have
// changed it in a way runCached cannot follow).
async function withConn(session, lane, untracked, fn) {
  if (!session) {
    const p = lane === 'async' ? asyncLane : shared;
    const conn = await p.acquire();
    try {
      return await fn(conn);
    } finally {
      if (untracked) p.replace(conn);
      else p.release(conn);
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
    const kind = statementKind(statements.at(-1)?.sql ?? '');
    try {
      return await withConn(session, lane, kind === 'other', async (conn) => {
        const query = (st) => conn.queryAsync(file ? st.sql.split(file).join(upload) : st.sql, { format: st.format || 'TabSeparated' });
        const last = session ? await runStatements(query, statements, reset) : await runCached(conn, query, statements, reset, kind);
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
      if (kind !== 'read') dbGeneration++;
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
