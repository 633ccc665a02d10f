// The framed protocol between deploy/local/chlocal (Go) and an engine script
// (engine.mjs: chdb-wasm; engine-native.mjs: native chDB), on file
// descriptors 3 (requests) and 4 (answers): not stdin/stdout, because libchdb
// reads INSERT data from stdin whenever bytes wait there.
//
// Frame: uint32 LE header length, JSON header, uint32 LE body length, body.
// Every request carries an id that its answer repeats: an engine that says
// it is concurrent (native chDB) answers requests as they finish, the other
// (chdb-wasm, not reentrant) strictly one at a time.
//
// Request header:  {op: "exec", id, session, lane, statements: [{sql, format}], reset: [...], file}
//                  {op: "close", id, session}
// Response header: {id, ok, error, rows, bytes, scannedRows, scannedBytes, elapsed}
// The response body is the output of the last statement. The reset
// statements run after the others on the same connection, whatever happened
// (they put back what the request changed: its settings); the native engine
// defers them on a connection without a session until a request that does
// not set the same (engine-native.mjs, runCached).

import { createReadStream, createWriteStream } from 'node:fs';

export const log = (...a) => process.stderr.write(`[engine] ${a.join(' ')}\n`);

const requests = createReadStream(null, { fd: 3 });
const answers = createWriteStream(null, { fd: 4 });

export function writeFrame(header, body) {
  const h = Buffer.from(JSON.stringify(header));
  const b = body ? Buffer.from(body.buffer, body.byteOffset, body.byteLength) : Buffer.alloc(0);
  const out = Buffer.allocUnsafe(8 + h.length + b.length);
  out.writeUInt32LE(h.length, 0);
  h.copy(out, 4);
  out.writeUInt32LE(b.length, 4 + h.length);
  b.copy(out, 8 + h.length);
  return new Promise((resolve) => {
    if (answers.write(out)) resolve();
    else answers.once('drain', resolve);
  });
}

// runStatements runs statements in order with query(statement), then the
// reset statements (their errors ignored); it returns the last statement's
// result.
export async function runStatements(query, statements, reset) {
  let last = null;
  try {
    for (const st of statements) last = await query(st);
  } finally {
    for (const st of reset ?? []) await query(st).catch(() => {});
  }
  return last;
}

// serve reads frames from stdin and hands them to engine one after another:
//   engine.close(session), engine.exec(session, statements, reset, file, body, lane) ->
//   {rows, bytes, scannedRows, scannedBytes, elapsed, data},
//   engine.info() -> [version, displayName, timezone], engine.shutdown();
//   engine.name (native or wasm) is reported with the ready frame;
//   engine.concurrent says whether requests may overlap.
// The parent closing the request pipe means it is gone: stop, so nothing is
// left running.
export async function serve(engine) {
  const handle = async (header, body) => {
    const id = header.id;
    try {
      if (header.op === 'close') {
        await engine.close(header.session);
        return await writeFrame({ id, ok: true });
      }
      if (header.op !== 'exec') return await writeFrame({ id, ok: false, error: `unknown op ${header.op}` });
      const r = await engine.exec(header.session, header.statements, header.reset, header.file, body, header.lane);
      const { data, ...counts } = r;
      return await writeFrame({ id, ok: true, ...counts }, data);
    } catch (e) {
      return writeFrame({ id, ok: false, error: String(e?.message ?? e) });
    }
  };
  // Chunks are kept in a list until a whole frame has arrived and joined
  // once: joining on every chunk copied a multi-megabyte INSERT body dozens
  // of times.
  let buf = Buffer.alloc(0);
  let pending = [];
  let pendingLen = 0;
  let need = 4; // bytes buf must hold before the next frame can be read
  let chain = Promise.resolve();
  const inflight = new Set();
  requests.on('data', (chunk) => {
    pending.push(chunk);
    pendingLen += chunk.length;
    if (buf.length + pendingLen < need) return;
    buf = Buffer.concat([buf, ...pending]);
    pending = [];
    pendingLen = 0;
    for (;;) {
      need = 4;
      if (buf.length < need) return;
      const hl = buf.readUInt32LE(0);
      need = 8 + hl;
      if (buf.length < need) return;
      const bl = buf.readUInt32LE(4 + hl);
      need = 8 + hl + bl;
      if (buf.length < need) return;
      const header = JSON.parse(buf.subarray(4, 4 + hl).toString('utf8'));
      const body = Buffer.from(buf.subarray(8 + hl, 8 + hl + bl)); // copy: buf is reused
      buf = buf.subarray(8 + hl + bl);
      if (engine.concurrent) {
        const p = handle(header, body).finally(() => inflight.delete(p));
        inflight.add(p);
      } else {
        chain = chain.then(() => handle(header, body));
      }
    }
  });
  requests.on('end', async () => {
    await chain;
    await Promise.all(inflight);
    await engine.shutdown().catch(() => {});
    process.exit(0);
  });
  const [version, displayName, timezone] = await engine.info();
  log(`chDB ${version} ready`);
  await writeFrame({ ok: true, ready: true, engine: engine.name, version, displayName, timezone });
}
