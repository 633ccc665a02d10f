#!/usr/bin/env bash
# Stops the local ClickHouse endpoint started by start.sh. Its data goes with
# it: the wasm engine's lives in memory, the native engine's folder is removed.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
state=${STATUSTRACE_LOCAL_STATE:-$root/.cache/chlocal}
if [ -f "$state/pid" ]; then
  pid=$(cat "$state/pid")
  if kill "$pid" 2>/dev/null; then
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    echo "stopped local ClickHouse endpoint (pid $pid)"
  fi
  rm -f "$state/pid"
  rm -rf "$state/native-data"
else
  echo "no local ClickHouse endpoint started from this checkout"
fi
