#!/usr/bin/env bash
# Starts an HTTP remote cache for Bazel (Debian's nginx-light with WebDAV) on
# a free loopback port, in the foreground of a background job. A write (PUT)
# needs a credential made afresh for this run (its hash under DIR, mode 600;
# the password only in the caller's variables); an anonymous PUT gets 401.
# Reads are anonymous unless REMOTE_CACHE_ANONYMOUS_READS=0, which makes a
# second, read-only credential.
#   source tools/remote_cache.sh; start_remote_cache DIR
#     sets CACHE_URL (no credential), CACHE_READ_URL (what a reader uses),
#     CACHE_WRITE_URL (user:password@, the writer's), CACHE_STORE (ac/, cas/),
#     CACHE_PID
#   check_remote_cache_auth   # prints the answers; fails unless as promised
#   count_remote_cache_entries  # files under ac/ and cas/
#   stop_remote_cache
# A library for bash scripts that run with `set -euo pipefail`.

# Appends "USER:{SSHA}..." to each FILE and prints the new password.
# nginx reads RFC 2307 {SSHA} (salted SHA-1) without Apache's htpasswd; the
# password is 24 random bytes, so the hash's speed is no weakness.
_remote_cache_credential() {
  python3 - "$@" <<'EOF'
import base64, hashlib, os, secrets, sys

user, files = sys.argv[1], sys.argv[2:]
password = secrets.token_urlsafe(24)
salt = os.urandom(8)
digest = hashlib.sha1(password.encode() + salt).digest()
line = f"{user}:{{SSHA}}{base64.b64encode(digest + salt).decode()}\n"
for name in files:
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a") as out:
        out.write(line)
print(password)
EOF
}

start_remote_cache() {
  local dir=$1 port read_auth="off" host writer reader
  mkdir -p "$dir/store"
  rm -f "$dir/readers.htpasswd" "$dir/writers.htpasswd"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  host="127.0.0.1:$port"
  writer=$(_remote_cache_credential ci-writer "$dir/writers.htpasswd" "$dir/readers.htpasswd")
  CACHE_URL="http://$host"
  CACHE_STORE="$dir/store"
  CACHE_WRITE_URL="http://ci-writer:$writer@$host"
  CACHE_READ_URL=$CACHE_URL
  if [ "${REMOTE_CACHE_ANONYMOUS_READS:-1}" = 0 ]; then
    read_auth='"bazel remote cache (read)"'
    reader=$(_remote_cache_credential reader "$dir/readers.htpasswd")
    CACHE_READ_URL="http://reader:$reader@$host"
  fi
  sed -e "s|@DIR@|$dir|g" -e "s|@PORT@|$port|g" -e "s|@READ_AUTH@|$read_auth|g" \
    "$(dirname "${BASH_SOURCE[0]}")/nginx_cache.conf.in" > "$dir/nginx.conf"
  nginx -c "$dir/nginx.conf" -p "$dir" &
  CACHE_PID=$!
  for _ in $(seq 50); do
    # Any HTTP answer (403 for the bare directory) means nginx is listening.
    if [ "$(curl -s -o /dev/null -w '%{http_code}' "$CACHE_URL/")" != 000 ]; then
      echo "remote cache: $CACHE_URL (pid $CACHE_PID, store $dir/store;" \
        "writes need the credential, anonymous reads: $([ "$CACHE_READ_URL" = "$CACHE_URL" ] && echo allowed || echo refused))"
      return 0
    fi
    sleep 0.1
  done
  echo "remote cache did not come up; nginx log:" >&2
  cat "$dir/error.log" >&2 || true
  return 1
}

# The HTTP status of METHOD URL (PUT sends a small body).
_remote_cache_status() {
  local method=$1 url=$2
  if [ "$method" = PUT ]; then
    curl -s -o /dev/null -w '%{http_code}' -X PUT --data-binary probe "$url"
  else
    curl -s -o /dev/null -w '%{http_code}' "$url"
  fi
}

# Probes under /probe/ (outside ac/ and cas/, so entry counts ignore them):
# every PUT but the writer's gets 401; reads as REMOTE_CACHE_ANONYMOUS_READS says.
check_remote_cache_auth() {
  local host=${CACHE_URL#http://} anonymous wrong reader writer get_anonymous get_reader ok=1
  anonymous=$(_remote_cache_status PUT "$CACHE_URL/probe/anonymous")
  wrong=$(_remote_cache_status PUT "http://ci-writer:not-the-password@$host/probe/wrong")
  reader=$(_remote_cache_status PUT "$CACHE_READ_URL/probe/reader")
  writer=$(_remote_cache_status PUT "$CACHE_WRITE_URL/probe/writer")
  get_anonymous=$(_remote_cache_status GET "$CACHE_URL/probe/writer")
  get_reader=$(_remote_cache_status GET "$CACHE_READ_URL/probe/writer")
  echo "remote cache: PUT anonymous -> HTTP $anonymous, with a wrong password -> HTTP $wrong," \
    "with the reader's URL -> HTTP $reader (each must be 401); with the writer's credential -> HTTP $writer"
  echo "remote cache: GET anonymous -> HTTP $get_anonymous, with the reader's URL -> HTTP $get_reader"
  [ "$anonymous" = 401 ] && [ "$wrong" = 401 ] && [ "$reader" = 401 ] || ok=0
  [[ $writer == 20[14] ]] && [ "$get_reader" = 200 ] || ok=0
  if [ "$CACHE_READ_URL" = "$CACHE_URL" ]; then
    [ "$get_anonymous" = 200 ] || ok=0
  else
    [ "$get_anonymous" = 401 ] || ok=0
  fi
  if [ "$ok" = 0 ]; then
    echo "remote cache: access control is not as promised" >&2
    return 1
  fi
}

count_remote_cache_entries() {
  find "$CACHE_STORE" \( -path "$CACHE_STORE/ac/*" -o -path "$CACHE_STORE/cas/*" \) -type f | wc -l
}

stop_remote_cache() {
  if [ -n "${CACHE_PID:-}" ] && kill -0 "$CACHE_PID" 2>/dev/null; then
    kill "$CACHE_PID"
    wait "$CACHE_PID" 2>/dev/null || true
  fi
  CACHE_PID=""
}
