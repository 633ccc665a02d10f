// The embedded ClickHouse engine (chDB compiled to WebAssembly) behind a tiny
// framed protocol on stdin/stdout. The Go side (deploy/local/chlocal) speaks
// ClickHouse's HTTP interface and drives this process; keeping the protocol
// work in Go lets it reuse clickhouse-go's own compression and block code, and
// keeps this file to what only Node can do: run chdb-wasm.
//
// Frame: uint32 LE header length, JSON header, uint32 LE body length, body.
// Requests are handled strictly one at a time (chdb is not reentrant).
//
// Request header:  {op: "exec", session, statements: [{sql, format}], file}
//                  {op: "close", session}
// Response header: {ok, error, rows, bytes, scannedRows, scannedBytes, elapsed}
// The response body is the output of the last statement.
import { AsyncChdb } from 'chdb-wasm';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);
// The multi-threaded bundle: the single-threaded one cannot create MergeTree tables.
const moduleUrl = join(dirname(require.resolve('chdb-wasm/chdb.wasm')), 'chdb.mjs');

const log = (...a) => process.stderr.write(`[engine] ${a.join(' ')}\n`);

// Server settings, read by the engine from /config.xml (its working directory)
// when the first connection opens:
// - dropped tables free their memory at once (the default keeps them 8 min,
//   and here all data lives in the engine's memory, which never shrinks);
// - caches stay small, for the same reason.
const serverConfig = `<clickhouse>
  <database_atomic_delay_before_drop_table_sec>0</database_atomic_delay_before_drop_table_sec>
  <mark_cache_size>67108864</mark_cache_size>
  <index_mark_cache_size>16777216</index_mark_cache_size>
  <uncompressed_cache_size>0</uncompressed_cache_size>
  <max_server_memory_usage_to_ram_ratio>0.95</max_server_memory_usage_to_ram_ratio>
</clickhouse>
`;

const db = await AsyncChdb.create({ moduleUrl });
await db.putFile('/config.xml', new TextEncoder().encode(serverConfig));
const sessions = new Map(); // session id -> AsyncChdbConnection
// Opening a connection costs ~100 ms, so requests without a session share one.
const shared = await db.connect();

function writeFrame(header, body) {
  const h = Buffer.from(JSON.stringify(header));
  const b = body ? Buffer.from(body.buffer, body.byteOffset, body.byteLength) : Buffer.alloc(0);
  const out = Buffer.allocUnsafe(8 + h.length + b.length);
  out.writeUInt32LE(h.length, 0);
  h.copy(out, 4);
  out.writeUInt32LE(b.length, 4 + h.length);
  b.copy(out, 8 + h.length);
  return new Promise((resolve) => {
    if (process.stdout.write(out)) resolve();
    else process.stdout.once('drain', resolve);
  });
}

async function connFor(session) {
  if (!session) return shared;
  let c = sessions.get(session);
  if (!c) {
    c = await db.connect();
    sessions.set(session, c);
  }
  return c;
}

async function handle(header, body) {
  if (header.op === 'close') {
    const c = sessions.get(header.session);
    sessions.delete(header.session);
    if (c) await c.close();
    return writeFrame({ ok: true });
  }
  if (header.op !== 'exec') return writeFrame({ ok: false, error: `unknown op ${header.op}` });
  try {
    const conn = await connFor(header.session);
    if (header.file) await db.putFile(header.file, new Uint8Array(body));
    let last = null;
    try {
      for (const st of header.statements) last = await conn.query(st.sql, st.format || 'TabSeparated');
    } finally {
      // Free the uploaded data at once: the engine's file system lives in memory.
      if (header.file) await db.putFile(header.file, new Uint8Array(0));
    }
    return writeFrame({
      ok: true,
      rows: last?.rowsRead ?? 0,
      bytes: last?.bytesRead ?? 0,
      scannedRows: last?.scannedRows ?? 0,
      scannedBytes: last?.scannedBytes ?? 0,
      elapsed: last?.elapsedSeconds ?? 0,
    }, last?.data);
  } catch (e) {
    return writeFrame({ ok: false, error: String(e?.message ?? e) });
  }
}

// Read frames from stdin and handle them one after another.
let buf = Buffer.alloc(0);
let chain = Promise.resolve();
process.stdin.on('data', (chunk) => {
  buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
  for (;;) {
    if (buf.length < 4) return;
    const hl = buf.readUInt32LE(0);
    if (buf.length < 8 + hl) return;
    const bl = buf.readUInt32LE(4 + hl);
    if (buf.length < 8 + hl + bl) return;
    const header = JSON.parse(buf.subarray(4, 4 + hl).toString('utf8'));
    const body = Buffer.from(buf.subarray(8 + hl, 8 + hl + bl)); // copy: buf is reused
    buf = buf.subarray(8 + hl + bl);
    chain = chain.then(() => handle(header, body));
  }
});
// The parent closing our stdin means it is gone: stop, so nothing is left running.
process.stdin.on('end', async () => {
  await chain;
  await db.terminate().catch(() => {});
  process.exit(0);
});

const info = await shared.query('SELECT version(), displayName(), timezone()', 'JSONCompactEachRow');
const [version, displayName, timezone] = JSON.parse(info.text());
log(`chDB ${version} ready`);
await writeFrame({ ok: true, ready: true, version, displayName, timezone });
