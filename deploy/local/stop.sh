#!/usr/bin/env bash
# Stops the local ClickHouse endpoint started by start.sh from this state
# folder. The native engine's data folder is kept for the next start (wipe.sh
# removes it); the wasm engine's data lived in memory and is gone.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
. "$root/deploy/local/paths.sh"
state=$(statustrace_local_state "$root")
if [ -f "$state/pid" ]; then
  pid=$(cat "$state/pid")
  if kill "$pid" 2>/dev/null; then
    # The engine flushes and closes its data folder on a clean stop.
    for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    echo "stopped local ClickHouse endpoint (pid $pid)"
  fi
  rm -f "$state/pid" "$state/token"
else
  echo "no local ClickHouse endpoint started from this checkout"
fi
