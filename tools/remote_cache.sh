#!/usr/bin/env bash
# Starts an HTTP remote cache for Bazel (Debian's nginx-light with WebDAV) on
# a free loopback port, in the foreground of a background job.
#   source tools/remote_cache.sh; start_remote_cache DIR   # sets CACHE_URL, CACHE_PID
#   stop_remote_cache
start_remote_cache() {
  local dir=$1 port
  mkdir -p "$dir/store"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  sed -e "s|@DIR@|$dir|g" -e "s|@PORT@|$port|g" "$(dirname "${BASH_SOURCE[0]}")/nginx_cache.conf.in" > "$dir/nginx.conf"
  nginx -c "$dir/nginx.conf" -p "$dir" &
  CACHE_PID=$!
  CACHE_URL="http://127.0.0.1:$port"
  for _ in $(seq 50); do
    if curl -sf -o /dev/null -X PUT --data-binary ping "$CACHE_URL/ping"; then
      echo "remote cache: $CACHE_URL (pid $CACHE_PID, store $dir/store)"
      return 0
    fi
    sleep 0.1
  done
  echo "remote cache did not come up; nginx log:" >&2
  cat "$dir/error.log" >&2 || true
  return 1
}

stop_remote_cache() {
  if [ -n "${CACHE_PID:-}" ] && kill -0 "$CACHE_PID" 2>/dev/null; then
    kill "$CACHE_PID"
    wait "$CACHE_PID" 2>/dev/null || true
  fi
  CACHE_PID=""
}
