#!/usr/bin/env bash
# Proves what the project's remote cache promises, on a fresh cache of its
# own (tools/remote_cache.sh) and the smallest build that shows each point
# (//models:onnx_repo or a few of its model targets), every build from a
# clean output tree:
#   1. a write needs the credential: an anonymous PUT gets 401;
#   2. --config=remote_readonly writes nothing even when it holds the
#      writer's credential: the cache's entries and its PUT log stay as they
#      were, while the same build under --config=remote writes;
#   3. one model's damaged blob is detected (Bazel checks each download's
#      SHA-256), that model alone is rebuilt locally and the repository is
#      byte-identical; a reader leaves the blob damaged, a writer repairs it;
#   4. a cache that goes silent in the middle of a build costs warnings and
#      local actions, bounded by --remote_timeout, not a failed build.
#   tools/cache_safety_check.sh [--output_base DIR]
# Without --output_base it works in a temporary output base (which builds
# the onnx environment once) and deletes it; CI passes its clone's. The
# workspace's bazel-* links are left alone (--symlink_prefix=/).
# REMOTE_CACHE_ANONYMOUS_READS=0 runs it all with a reader's credential.
set -euo pipefail
cd "$(dirname "$0")/.."

output_base=""
own_base=0
case "${1:-}" in
  --output_base) output_base=$2 ;;
  --output_base=*) output_base=${1#--output_base=} ;;
  "") ;;
  *) echo "usage: $0 [--output_base DIR]" >&2; exit 2 ;;
esac
work=$(mktemp -d)
if [ -z "$output_base" ]; then
  output_base="$work/output-base"
  own_base=1
fi

# shellcheck source=tools/remote_cache.sh
source tools/remote_cache.sh
proxy_pid=""
cleanup() {
  if [ -n "$proxy_pid" ]; then
    kill "$proxy_pid" 2>/dev/null || true
    wait "$proxy_pid" 2>/dev/null || true
  fi
  stop_remote_cache
  if [ "$own_base" = 1 ]; then
    ./bazelw --output_base="$output_base" shutdown >/dev/null 2>&1 || true
    chmod -R u+w "$output_base" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "cache check FAILED: $*" >&2
  exit 1
}

bazel_in() { ./bazelw --output_base="$output_base" "$@"; }

# build_clean NAME CONFIG URL ARGS...: `bazel clean`, then a build under
# --config=CONFIG against URL; full output in $work/NAME.log, execution log
# in $work/NAME.json. Shows the cache's warnings and Bazel's process summary.
build_clean() {
  local name=$1 config=$2 url=$3 started=$SECONDS
  shift 3
  bazel_in clean >/dev/null 2>&1 || fail "bazel clean (output base $output_base)"
  if ! bazel_in build --config=ci --symlink_prefix=/ --disk_cache= \
      --config="$config" --remote_cache="$url" \
      --execution_log_json_file="$work/$name.json" "$@" >"$work/$name.log" 2>&1; then
    tail -n 40 "$work/$name.log" >&2
    fail "the $name build failed (--config=$config)"
  fi
  grep -E '^(WARNING|ERROR)|timed out|does not match|errors during|processes:' "$work/$name.log" \
    | sed 's/^/  | /' || true
  echo "  ($name build: $((SECONDS - started)) s, --config=$config, from a clean output tree)"
}

puts() { grep -c '"PUT ' "$work/cache/access.log" || true; }

echo "::: cache check 1: a write needs the credential"
start_remote_cache "$work/cache"
check_remote_cache_auth || fail "the cache does not refuse what it must"

bazel_in query 'attr(mnemonic, OnnxModel, //models:all)' >"$work/onnx_models" 2>"$work/query.log" \
  || { cat "$work/query.log" >&2; fail "bazel query for the onnx model targets"; }
sort -o "$work/onnx_models" "$work/onnx_models"

echo "::: cache check 2: --config=remote_readonly writes nothing, even with the writer's credential"
build_clean seed remote "$CACHE_WRITE_URL" "$(head -n 1 "$work/onnx_models")"
entries_before=$(count_remote_cache_entries)
puts_before=$(puts)
build_clean readonly remote_readonly "$CACHE_WRITE_URL" //models:onnx_repo
python3 tools/check_cache_hits.py "$work/readonly.json" --mixed \
  || fail "the read-only build should have run most models locally (nothing to upload otherwise)"
entries_after=$(count_remote_cache_entries)
echo "cache entries (ac/ + cas/) before the read-only build: $entries_before, after: $entries_after;" \
  "PUT requests during it: $(($(puts) - puts_before))"
if [ "$entries_before" -eq 0 ] || [ "$entries_after" != "$entries_before" ] || [ "$(puts)" != "$puts_before" ]; then
  fail "a --config=remote_readonly build wrote to the cache"
fi
build_clean writer remote "$CACHE_WRITE_URL" //models:onnx_repo
entries_written=$(count_remote_cache_entries)
echo "the same build under --config=remote (CI, the writer): cache entries $entries_after -> $entries_written"
[ "$entries_written" -gt "$entries_after" ] || fail "the writer's build wrote nothing: the count proves nothing"
bin=$(bazel_in info bazel-bin 2>/dev/null)
cp -r "$bin/models/onnx_repo" "$work/reference"

echo "::: cache check 3: a damaged blob is detected and its model rebuilt locally"
read -r blob model_dir < <(python3 tools/cache_blob.py pick "$work/writer.json")
model=${model_dir#*/bin/}
echo "damaging one blob of //${model%%/*}:${model#*/} (cas/$blob)"
python3 tools/cache_blob.py corrupt "$CACHE_STORE" "$blob"
for role in reader writer; do
  if [ "$role" = reader ]; then
    build_clean damaged_read remote_readonly "$CACHE_READ_URL" //models:onnx_repo
    log=damaged_read
  else
    build_clean damaged_write remote "$CACHE_WRITE_URL" //models:onnx_repo
    log=damaged_write
  fi
  grep -q "does not match received digest" "$work/$log.log" \
    || fail "the $role's build did not report the damaged download"
  python3 tools/check_cache_hits.py "$work/$log.json" --expect-local "$model" \
    || fail "the $role's build should have rebuilt exactly $model locally"
  cmp "$work/reference/manifest.json" "$bin/models/onnx_repo/manifest.json" \
    || fail "the $role's manifest differs"
  diff -r "$work/reference" "$bin/models/onnx_repo" >/dev/null || fail "the $role's repository differs"
  echo "the $role's //models:onnx_repo is byte-identical (manifest.json and every file)"
  if python3 tools/cache_blob.py intact "$CACHE_STORE" "$blob"; then
    [ "$role" = writer ] || fail "a read-only build changed the damaged blob"
  else
    [ "$role" = reader ] || fail "the writer's build did not upload the rebuilt blob"
  fi
done

echo "::: cache check 4: the cache goes silent in the middle of a build"
mapfile -t outage_targets < <(head -n 4 "$work/onnx_models")
# A model's hit takes one request for its action result, one for its output
# tree and one per file. With --jobs=2 at most two lookups are in flight,
# so 2 * (the most a hit takes) - 1 answered requests finish at least one
# hit and leave the other models to the silence.
most=0
for target in "${outage_targets[@]}"; do
  files=$(find "$work/reference/${target#//models:}" -type f | wc -l)
  if [ $((files + 2)) -gt "$most" ]; then most=$((files + 2)); fi
done
python3 tools/stalling_cache_proxy.py --upstream "$CACHE_URL" --answer $((2 * most - 1)) \
  >"$work/proxy.url" 2>"$work/proxy.log" &
proxy_pid=$!
for _ in $(seq 50); do
  [ -s "$work/proxy.url" ] && break
  sleep 0.1
done
proxy_url=$(head -n 1 "$work/proxy.url")
[ -n "$proxy_url" ] || fail "the stalling proxy did not start"
credential=${CACHE_WRITE_URL#http://}
credential=${credential%@*}
build_clean outage remote "http://$credential@${proxy_url#http://}" \
  --remote_timeout=3 --jobs=2 "${outage_targets[@]}"
sed 's/^/  | /' "$work/proxy.log"
grep -q "^WARNING: Reading from Remote Cache" "$work/outage.log" || fail "no warning about the silent cache"
python3 tools/check_cache_hits.py "$work/outage.json" --mixed \
  || fail "expected some models from the cache before the silence and the rest built locally"
for target in "${outage_targets[@]}"; do
  diff -r "$work/reference/${target#//models:}" "$bin/models/${target#//models:}" >/dev/null \
    || fail "$target differs from the reference build"
done
echo "the build succeeded; its ${#outage_targets[@]} models are byte-identical to the reference"
echo "::: cache checks passed"
