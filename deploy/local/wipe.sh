#!/usr/bin/env bash
# Stops the local ClickHouse endpoint (stop.sh) and removes its data folder:
# every database in it is gone. `make clickhouse-wipe`.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$root/deploy/local/paths.sh"
state=$(statustrace_local_state "$root")
"$here/stop.sh"
data=${STATUSTRACE_LOCAL_DATA:-$(cat "$state/data-dir" 2>/dev/null || echo "$state/data")}
if [ -d "$data" ]; then
  rm -rf "$data"
  echo "removed the local endpoint's data folder $data"
else
  echo "no data folder at $data"
fi
