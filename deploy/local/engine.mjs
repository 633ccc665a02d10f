// The embedded ClickHouse engine (chDB compiled to WebAssembly) behind the
// framed protocol of frames.mjs. The Go side (deploy/local/chlocal) speaks
// ClickHouse's HTTP interface and drives this process; keeping the protocol
// work in Go lets it reuse clickhouse-go's own compression and block code, and
// keeps this file to what only Node can do: run chdb-wasm.
import { AsyncChdb } from 'chdb-wasm';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { serve, runStatements } from './frames.mjs';

const require = createRequire(import.meta.url);
// The multi-threaded bundle: the single-threaded one cannot create MergeTree tables.
const moduleUrl = join(dirname(require.resolve('chdb-wasm/chdb.wasm')), 'chdb.mjs');

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

async function connFor(session) {
  if (!session) return shared;
  let c = sessions.get(session);
  if (!c) {
    c = await db.connect();
    sessions.set(session, c);
  }
  return c;
}

await serve({
  name: 'wasm',
  async close(session) {
    const c = sessions.get(session);
    sessions.delete(session);
    if (c) await c.close();
  },
  async exec(session, statements, reset, file, body) {
    const conn = await connFor(session);
    if (file) await db.putFile(file, new Uint8Array(body));
    let last = null;
    try {
      last = await runStatements((st) => conn.query(st.sql, st.format || 'TabSeparated'), statements, reset);
    } finally {
      // Free the uploaded data at once: the engine's file system lives in memory.
      if (file) await db.putFile(file, new Uint8Array(0));
    }
    return {
      rows: last?.rowsRead ?? 0,
      bytes: last?.bytesRead ?? 0,
      scannedRows: last?.scannedRows ?? 0,
      scannedBytes: last?.scannedBytes ?? 0,
      elapsed: last?.elapsedSeconds ?? 0,
      data: last?.data,
    };
  },
  async info() {
    const r = await shared.query('SELECT version(), displayName(), timezone()', 'JSONCompactEachRow');
    return JSON.parse(r.text());
  },
  shutdown: () => db.terminate(),
});
