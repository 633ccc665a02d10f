#!/usr/bin/env bash
# Starts the local ClickHouse endpoint (deploy/local) unless one answers
# already, and prints the DSN to use. Idempotent and safe to run from several
# processes at once (go test runs packages in parallel): a lock serialises them.
#   STATUSTRACE_LOCAL_ADDR   listen address (default 127.0.0.1:8123)
#   STATUSTRACE_LOCAL_STATE  folder for the binary, pid and log (default .cache/chlocal)
#   STATUSTRACE_LOCAL_ENGINE wasm (default: chdb-wasm, data in memory) or
#                            native (libchdb from npm chdb, data on disk in the
#                            state folder; Linux x64/arm64 with glibc, macOS);
#                            an endpoint running the other engine is restarted
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
addr=${STATUSTRACE_LOCAL_ADDR:-127.0.0.1:8123}
state=${STATUSTRACE_LOCAL_STATE:-$root/.cache/chlocal}
engine=${STATUSTRACE_LOCAL_ENGINE:-wasm}
case "$engine" in
  wasm) script=engine.mjs ;;
  native) script=engine-native.mjs ;;
  *) echo "STATUSTRACE_LOCAL_ENGINE=$engine: want wasm or native" >&2; exit 2 ;;
esac
mkdir -p "$state"

ping() { curl -fsS --max-time 2 "http://$addr/ping" >/dev/null 2>&1; }
# /ping is answered without the engine; a query that allocates proves the
# engine is alive and not stuck at its memory limit (its memory never shrinks).
healthy() { curl -fsS --max-time 20 "http://$addr/?query=SELECT%20count()%20FROM%20numbers(100)%20GROUP%20BY%20number%20%25%207%20FORMAT%20Null" >/dev/null 2>&1; }

exec 9>"$state/lock"
flock 9
if ping; then
  running=$(cat "$state/engine" 2>/dev/null || echo wasm)
  if [ "$running" = "$engine" ] && healthy; then echo "http://$addr"; exit 0; fi
  pid=$(cat "$state/pid" 2>/dev/null || true)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    if [ "$running" = "$engine" ]; then
      echo "local ClickHouse endpoint on $addr answers /ping but not queries: restarting it" >&2
    else
      echo "local ClickHouse endpoint on $addr runs the $running engine: restarting it with $engine" >&2
    fi
    kill -9 "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do ping || break; sleep 0.1; done
  else
    echo "something on $addr answers /ping but not queries, and it was not started from this checkout" >&2
    exit 1
  fi
fi

# The engine and its Node 24 runtime, pinned by package-lock.json, installed
# inside the project (never globally).
local_dir="$root/deploy/local"
if ! cmp -s "$local_dir/package-lock.json" "$local_dir/node_modules/.statustrace-installed" 2>/dev/null; then
  echo "installing the embedded ClickHouse engine (npm ci in deploy/local)..." >&2
  (cd "$local_dir" && npm ci --no-audit --no-fund --loglevel=error >&2)
  cp "$local_dir/package-lock.json" "$local_dir/node_modules/.statustrace-installed"
fi

if [ "$engine" = native ]; then
  # `npm install` rather than `npm ci`: the lock holds only the platforms the
  # registry serves here, and npm ci refuses a lock without the others.
  native_dir="$local_dir/native"
  if ! cmp -s "$native_dir/package-lock.json" "$native_dir/node_modules/.statustrace-installed" 2>/dev/null; then
    echo "installing the native embedded ClickHouse engine (npm install in deploy/local/native)..." >&2
    (cd "$native_dir" && npm install --no-audit --no-fund --no-save --loglevel=error >&2)
    cp "$native_dir/package-lock.json" "$native_dir/node_modules/.statustrace-installed"
  fi
  # Like the wasm engine's memory, the native engine's data starts empty.
  export STATUSTRACE_LOCAL_DATA="$state/native-data"
  rm -rf "$STATUSTRACE_LOCAL_DATA"
fi

(cd "$root" && go build -o "$state/chlocal" ./cmd/chlocal)
nohup setsid "$state/chlocal" -listen "$addr" ${STATUSTRACE_LOCAL_VERBOSE:+-v} \
  -node "$local_dir/node_modules/.bin/node" -engine "$local_dir/$script" \
  >"$state/chlocal.log" 2>&1 </dev/null 9>&- &
pid=$!
echo "$pid" >"$state/pid"
echo "$engine" >"$state/engine"

for _ in $(seq 1 360); do
  if ping && healthy; then echo "http://$addr"; exit 0; fi
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "local ClickHouse endpoint failed to start; its log:" >&2
    cat "$state/chlocal.log" >&2
    exit 1
  fi
  sleep 0.5
done
echo "local ClickHouse endpoint did not answer on $addr within 180s; its log:" >&2
cat "$state/chlocal.log" >&2
exit 1
