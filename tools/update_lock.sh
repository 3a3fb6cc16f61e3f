#!/usr/bin/env bash
# Re-resolves the hashed lock of one Python environment, several, or all.
#
#   tools/update_lock.sh all            every environment, from one resolution
#   tools/update_lock.sh onnx [e2e ...] only these, keeping every package the
#                                       other locks share at their pinned version
#
# An environment is a folder holding requirements.in (what it asks for) and
# requirements_lock.txt (exact versions, --hash entries): a backend's is
# generators/backends/<name>/, the shared core's and the test environments'
# are third_party/python/<name>/. The locks must co-resolve (the CLI's
# environment installs several together), so every lock is compiled under
# constraints: with `all`, the pins of one resolution of every requirements.in
# together; otherwise the pins of the locks not being updated. If a change
# cannot keep the shared pins, the run fails; then update `all`.
set -euo pipefail
cd "$(dirname "$0")/.."

env_dir() {
  local name=$1
  if [ -f "generators/backends/$name/requirements.in" ]; then
    echo "generators/backends/$name"
  elif [ -f "third_party/python/$name/requirements.in" ]; then
    echo "third_party/python/$name"
  else
    echo "update_lock: unknown environment '$name'; valid: all $(all_envs | xargs -n1 basename | tr '\n' ' ')" >&2
    exit 2
  fi
}
all_envs() {
  find generators/backends third_party/python -mindepth 2 -maxdepth 2 -name requirements.in \
    -printf '%h\n' | sort
}
# name==version lines of lock files, extras and hashes dropped (constraint form).
pins() { grep -hE '^[A-Za-z0-9]' "$@" | sed -E 's/\[[^]]*\]//; s/ *\\$//' | sort -u; }

[ $# -ge 1 ] || { echo "usage: tools/update_lock.sh all | ENV [ENV ...]" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet --disable-pip-version-check pip-tools
compile() {  # compile <requirements.in> <output lock> [pip-compile options]
  local source=$1 output=$2
  shift 2
  "$work/venv/bin/pip-compile" --quiet --generate-hashes --allow-unsafe --no-emit-index-url \
    --no-emit-find-links --index-url https://pypi.org/simple --output-file="$output" "$@" "$source"
}

if [ "$1" = all ]; then
  mapfile -t dirs < <(all_envs)
  # One resolution of everything together gives the shared pins.
  for dir in "${dirs[@]}"; do echo "-r $(pwd)/$dir/requirements.in"; done > "$work/universe.in"
  compile "$work/universe.in" "$work/universe.txt"
  pins "$work/universe.txt" > "$work/constraints.txt"
else
  dirs=()
  for name in "$@"; do dirs+=("$(env_dir "$name")"); done
  others=()
  for dir in $(all_envs); do
    [[ " ${dirs[*]} " == *" $dir "* ]] || others+=("$dir/requirements_lock.txt")
  done
  pins "${others[@]}" > "$work/constraints.txt"
fi

for dir in "${dirs[@]}"; do
  echo "update_lock: resolving $dir/requirements_lock.txt"
  # Relative paths, so the lock's `# via` notes carry no machine path.
  cp "$work/constraints.txt" "$dir/.shared_pins.txt"
  (cd "$dir" && compile requirements.in requirements_lock.txt -c .shared_pins.txt) || {
    rm -f "$dir/.shared_pins.txt"
    echo "update_lock: $dir cannot keep the pins the other locks share; run tools/update_lock.sh all" >&2
    exit 1
  }
  rm -f "$dir/.shared_pins.txt"
  sed -i -E 's/^( *# *)-c \.shared_pins\.txt$/\1shared pins (tools\/update_lock.sh)/' "$dir/requirements_lock.txt"
done
