# Sourced by start.sh, stop.sh and wipe.sh: the one place that decides which
# state folder an endpoint uses. The default address (127.0.0.1:8123) keeps
# .cache/chlocal; any other HTTP address gets .cache/chlocal-<port>, so two
# endpoints started from one checkout on different addresses never share a
# pid, token or data folder (a shared data folder made the second native
# engine fail and fall back to chdb-wasm).
statustrace_local_state() {
  local root=$1 addr=${STATUSTRACE_LOCAL_ADDR:-127.0.0.1:8123}
  if [ -n "${STATUSTRACE_LOCAL_STATE:-}" ]; then
    echo "$STATUSTRACE_LOCAL_STATE"
  elif [ "$addr" = 127.0.0.1:8123 ]; then
    echo "$root/.cache/chlocal"
  else
    echo "$root/.cache/chlocal-${addr##*:}"
  fi
}
