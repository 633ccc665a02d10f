#!/usr/bin/env bash
# Starts the local ClickHouse endpoint (deploy/local) unless this checkout's
# endpoint answers already, and prints the DSN to use. Idempotent and safe to
# run from several processes at once (go test runs packages in parallel): a
# lock serialises them.
#   STATUSTRACE_LOCAL_ADDR      HTTP interface (default 127.0.0.1:8123)
#   STATUSTRACE_LOCAL_TCP_ADDR  native TCP protocol (default 127.0.0.1:9000)
#   STATUSTRACE_LOCAL_STATE     folder for the binary, pid, token and log
#                               (default .cache/chlocal on the default address,
#                               .cache/chlocal-<http port> on any other)
#   STATUSTRACE_LOCAL_DATA      the native engine's data folder, kept across
#                               stop and start (default $STATUSTRACE_LOCAL_STATE/data)
#   STATUSTRACE_LOCAL_ENGINE    unset: native chDB where it installs, else
#                               chdb-wasm (one line says why); native or wasm
#                               forces one. An endpoint running the other
#                               engine is restarted.
#   STATUSTRACE_LOCAL_POOL      native engine: parallel connections (default 1)
#   STATUSTRACE_LOCAL_CONFIG    native engine: a ClickHouse configuration file
#                               it loads (remote_servers for a cluster of
#                               local endpoints); implies the native engine
#   STATUSTRACE_LOCAL_PROTOCOL  which DSN to print: native (default,
#                               clickhouse://TCP_ADDR) or http (http://ADDR)
# An endpoint is reused only when this state folder started it (it answers
# the instance token kept there); anything else on either address is an error
# that names the address and the variable to change.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
local_dir="$root/deploy/local"
addr=${STATUSTRACE_LOCAL_ADDR:-127.0.0.1:8123}
tcp_addr=${STATUSTRACE_LOCAL_TCP_ADDR:-127.0.0.1:9000}
. "$local_dir/paths.sh"
state=$(statustrace_local_state "$root")
data=${STATUSTRACE_LOCAL_DATA:-$state/data}
want=${STATUSTRACE_LOCAL_ENGINE:-}
if [ -n "${STATUSTRACE_LOCAL_CONFIG:-}" ]; then
  # chdb-wasm takes no configuration file: a cluster needs the native engine.
  if [ "$want" = wasm ]; then echo "STATUSTRACE_LOCAL_CONFIG needs the native engine, not STATUSTRACE_LOCAL_ENGINE=wasm" >&2; exit 2; fi
  if [ ! -r "$STATUSTRACE_LOCAL_CONFIG" ]; then echo "STATUSTRACE_LOCAL_CONFIG=$STATUSTRACE_LOCAL_CONFIG: not a readable file" >&2; exit 2; fi
  want=native
fi
protocol=${STATUSTRACE_LOCAL_PROTOCOL:-native}
case "$want" in '' | wasm | native) ;; *) echo "STATUSTRACE_LOCAL_ENGINE=$want: want native or wasm (or unset)" >&2; exit 2 ;; esac
case "$protocol" in native | http) ;; *) echo "STATUSTRACE_LOCAL_PROTOCOL=$protocol: want native or http" >&2; exit 2 ;; esac
mkdir -p "$state"

dsn() { if [ "$protocol" = http ]; then echo "http://$addr"; else echo "clickhouse://$tcp_addr"; fi; }
ping() { curl -fsS --max-time 2 "http://$addr/ping" >/dev/null 2>&1; }
# /ping is answered without the engine; a query that allocates proves the
# engine is alive (the wasm engine's memory never shrinks).
healthy() { curl -fsS --max-time 20 "http://$addr/?query=SELECT%20count()%20FROM%20numbers(100)%20GROUP%20BY%20number%20%25%207%20FORMAT%20Null" >/dev/null 2>&1; }
instance() { curl -fsS --max-time 2 "http://$addr/statustrace/instance" 2>/dev/null || true; }
listening() { # host:port accepts connections
  local h=${1%:*} p=${1##*:}
  (exec 3<>"/dev/tcp/$h/$p") 2>/dev/null
}
busy() {
  echo "$1 is in use by something this checkout did not start ($2)." >&2
  echo "Set $3 to a free address, e.g. $3=127.0.0.1:$4, or stop what listens there." >&2
  exit 1
}

exec 9>"$state/lock"
flock 9
token=$(cat "$state/token" 2>/dev/null || true)
pid=$(cat "$state/pid" 2>/dev/null || true)
ours=false
if [ -n "$token" ] && [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && [ "$(instance)" = "$token" ]; then ours=true; fi
if $ours; then
  running=$(cat "$state/engine" 2>/dev/null || true)
  if { [ -z "$want" ] || [ "$running" = "$want" ]; } && healthy; then dsn; exit 0; fi
  if [ -n "$want" ] && [ "$running" != "$want" ]; then
    echo "local ClickHouse endpoint on $addr runs the $running engine: restarting it with $want" >&2
  else
    echo "local ClickHouse endpoint on $addr answers /ping but not queries: restarting it" >&2
  fi
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do ping || break; sleep 0.1; done
fi
if ping || listening "$addr"; then
  busy "$addr" "the HTTP address; another checkout's endpoint or a ClickHouse server" STATUSTRACE_LOCAL_ADDR 18123
fi
if listening "$tcp_addr"; then
  busy "$tcp_addr" "the native TCP address" STATUSTRACE_LOCAL_TCP_ADDR 19000
fi

# Node 24 (and chdb-wasm, the fallback), pinned by package-lock.json,
# installed inside the project (never globally).
if ! cmp -s "$local_dir/package-lock.json" "$local_dir/node_modules/.statustrace-installed" 2>/dev/null; then
  echo "installing Node 24 and chdb-wasm (npm ci in deploy/local)..." >&2
  (cd "$local_dir" && npm ci --no-audit --no-fund --loglevel=error >&2)
  cp "$local_dir/package-lock.json" "$local_dir/node_modules/.statustrace-installed"
fi

# native_unavailable prints why native chDB cannot run here, or nothing.
native_unavailable() {
  case "$(uname -s)/$(uname -m)" in
    Linux/x86_64 | Linux/aarch64 | Linux/arm64)
      getconf GNU_LIBC_VERSION >/dev/null 2>&1 || { echo "libchdb needs glibc, this Linux has another C library"; return; } ;;
    Darwin/*) ;;
    *) echo "libchdb is built for Linux x64/arm64 with glibc and macOS, not $(uname -s)/$(uname -m)"; return ;;
  esac
  # `npm install` rather than `npm ci`: the lock holds only the platforms the
  # registry serves here, and npm ci refuses a lock without the others.
  local native_dir="$local_dir/native"
  if ! cmp -s "$native_dir/package-lock.json" "$native_dir/node_modules/.statustrace-installed" 2>/dev/null; then
    echo "installing native chDB (npm install in deploy/local/native, about 550 MB)..." >&2
    if ! (cd "$native_dir" && npm install --no-audit --no-fund --no-save --loglevel=error >&2); then
      echo "npm install of chdb failed (see above)"; return
    fi
    cp "$native_dir/package-lock.json" "$native_dir/node_modules/.statustrace-installed"
  fi
}

engine=$want
if [ -z "$engine" ]; then
  engine=native
  why=$(native_unavailable)
  if [ -n "$why" ]; then
    echo "native chDB is not available ($why): using chdb-wasm, whose data lives in memory and is gone when the endpoint stops" >&2
    engine=wasm
  fi
elif [ "$engine" = native ]; then
  why=$(native_unavailable)
  if [ -n "$why" ]; then echo "STATUSTRACE_LOCAL_ENGINE=native: $why" >&2; exit 1; fi
fi

(cd "$root" && go build -o "$state/chlocal" ./cmd/chlocal)

# launch ENGINE: starts chlocal and waits until it answers; returns 1 with its
# log on stderr when it dies or does not answer.
launch() {
  local engine=$1 script=engine.mjs
  if [ "$engine" = native ]; then
    script=engine-native.mjs
    mkdir -p "$data"
    # One engine per data folder: the endpoint inherits fd 8 and holds this
    # lock for its life. Another endpoint on the same folder is an error
    # that says so, not a silent fall back to chdb-wasm.
    exec 8>"$data/.statustrace-lock"
    if ! flock -n 8; then
      exec 8>&-
      echo "the data folder $data is in use by another local endpoint (see $(cat "$data/.statustrace-owner" 2>/dev/null || echo 'its state folder'))." >&2
      echo "Stop that endpoint, or give this one its own folder with STATUSTRACE_LOCAL_DATA (or STATUSTRACE_LOCAL_STATE)." >&2
      exit 1
    fi
    echo "$state on $addr" >"$data/.statustrace-owner"
    echo "$data" >"$state/data-dir"
  else
    echo "chdb-wasm keeps its data in memory: it is gone when the endpoint stops" >&2
  fi
  od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$state/token"
  STATUSTRACE_LOCAL_DATA=$data nohup setsid "$state/chlocal" -listen "$addr" -listen-tcp "$tcp_addr" \
    -token-file "$state/token" ${STATUSTRACE_LOCAL_VERBOSE:+-v} \
    -node "$local_dir/node_modules/.bin/node" -engine "$local_dir/$script" \
    >"$state/chlocal.log" 2>&1 </dev/null 9>&- &
  local pid=$!
  exec 8>&- # the endpoint holds the data lock now (this script does not)
  echo "$pid" >"$state/pid"
  echo "$engine" >"$state/engine"
  for _ in $(seq 1 360); do
    if [ "$(instance)" = "$(cat "$state/token")" ] && healthy; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "local ClickHouse endpoint ($engine engine) failed to start; its log:" >&2
      cat "$state/chlocal.log" >&2
      rm -f "$state/pid"
      return 1
    fi
    sleep 0.5
  done
  echo "local ClickHouse endpoint ($engine engine) did not answer on $addr within 180s; its log:" >&2
  cat "$state/chlocal.log" >&2
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$state/pid"
  return 1
}

if launch "$engine"; then dsn; exit 0; fi
if [ -z "$want" ] && [ "$engine" = native ]; then
  echo "native chDB did not start here (log above): using chdb-wasm, whose data lives in memory and is gone when the endpoint stops" >&2
  launch wasm && { dsn; exit 0; }
fi
exit 1
