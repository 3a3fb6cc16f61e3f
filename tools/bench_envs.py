"""Environments benchmark: what a build creates, and what a pin re-runs.

    python3 tools/bench_envs.py [--skip-fresh] [--pin-backends savedmodel,onnx]
                                [--warm-cache] [--baseline REV]

Prints, on this machine and in this run:
  1. a build of the ONNX family alone (`//models:onnx_repo`) in a fresh
     output base with an empty environment store (Bazel server start,
     environments created from the warm pip cache, models built): seconds
     end to end, the environments created with their sizes, and whether any
     holds TensorFlow or torch;
  2. for each backend of --pin-backends, a comment-only edit of its lock
     (reverted afterwards): the model actions it re-ran by mnemonic (from the
     execution log of `bazel build //models:implicit_repo`) and the tests
     `bazel test //...` re-ran instead of taking from its cache;
  3. with --warm-cache: for this checkout's HEAD and for --baseline REV (a
     commit from before the environment store, to compare against), a
     fresh clone with a fresh output base (and an empty store) building
     `//models:implicit_repo` from a local HTTP remote cache that a first
     clone of the same commit filled: seconds, local actions, and the bytes
     of Python environments the build created. The baseline pays its
     environments twice (filling and measuring), several GB each time.
Standard library only; needs bazel (./bazelw installs it), and for
--warm-cache nginx and curl (see tools/remote_cache.sh).
"""

import argparse
import contextlib
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from check_cache_hits import spawns  # noqa: E402

FLAGS = ["--color=no", "--curses=no", "--noshow_progress"]
FRAMEWORKS = ("tensorflow", "torch")


def bazel(*args, startup=(), check=True, cwd=ROOT):
    """Run bazel in the workspace (or cwd); returns the completed process."""
    return subprocess.run(["bazel", *startup, *args], cwd=cwd, check=check,
                          capture_output=True, text=True)


def tree_bytes(path: pathlib.Path) -> int:
    """Bytes of the regular files under path (symlinks not followed)."""
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def environments(base: pathlib.Path, store: pathlib.Path) -> list:
    """(name, folder) of every environment under an output base (before the store) or a store."""
    found = [(p.name, p / "env") for p in sorted((base / "external").glob("python_*"))
             if (p / "env").is_dir()]
    if store.is_dir():
        found += [(p.name[:12], p) for p in sorted(store.iterdir()) if (p / ".complete").exists()]
    return found


def frameworks_in(env: pathlib.Path) -> list:
    """The frameworks whose package the environment holds."""
    return [f for f in FRAMEWORKS for site in env.glob("lib/python3*/site-packages") if (site / f).exists()]


def bench_fresh_onnx() -> None:
    """Measurement 1: the ONNX family alone from a fresh output base and an empty store."""
    base = pathlib.Path(tempfile.mkdtemp(prefix="bench_envs."))
    store = base / "store"
    startup = [f"--output_base={base}"]
    try:
        start = time.monotonic()
        bazel("build", *FLAGS, f"--repo_env=IMPLICIT_ENV_STORE={store}", "//models:onnx_repo",
              startup=startup)
        seconds = time.monotonic() - start
        print(f"fresh output base and store, bazel build //models:onnx_repo: {seconds:.1f} s end to end")
        total = 0
        for name, env in environments(base, store):
            size = tree_bytes(env)
            total += size
            print(f"  created {name}: {size / 1e6:.0f} MB; frameworks: {frameworks_in(env) or 'none'}")
        print(f"  environments created: {total / 1e6:.0f} MB in all")
    finally:
        bazel("shutdown", startup=startup, check=False)
        shutil.rmtree(base, ignore_errors=True)


@contextlib.contextmanager
def remote_cache(work: pathlib.Path):
    """A fresh local HTTP cache (tools/remote_cache.sh): yields its writer's URL."""
    script = (f"source {ROOT}/tools/remote_cache.sh && start_remote_cache {work / 'cache'} >/dev/null"
              " && echo $CACHE_WRITE_URL && wait")
    server = subprocess.Popen(["bash", "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        yield server.stdout.readline().strip()
    finally:
        subprocess.run(["pkill", "-P", str(server.pid)], check=False)
        server.wait()


def warm_cache_build(rev: str, url: str, work: pathlib.Path) -> tuple:
    """(seconds, local actions, bytes of environments created) of a second fresh clone of rev."""
    clones = []
    try:
        for role in ("fill", "measure"):
            clone, base, store = (work / f"{rev}.{role}{part}" for part in ("", ".base", ".store"))
            subprocess.run(["git", "clone", "-q", "--no-checkout", str(ROOT), str(clone)], check=True)
            subprocess.run(["git", "-C", str(clone), "checkout", "-q", rev], check=True)
            clones.append((clone, base))
            log = work / f"{rev}.{role}.json"
            # The filling clone uses the machine's store; the measured one an empty store.
            store_flag = [f"--repo_env=IMPLICIT_ENV_STORE={store}"] if role == "measure" else []
            start = time.monotonic()
            bazel("build", *FLAGS, "--config=remote", f"--remote_cache={url}",
                  *store_flag, f"--execution_log_json_file={log}",
                  "//models:implicit_repo", startup=[f"--output_base={base}"], cwd=clone)
            seconds = time.monotonic() - start
        local = sum(1 for spawn in spawns(log.read_text()) if not spawn.get("remoteCacheHit"))
        created = sum(tree_bytes(env) for _, env in environments(base, store))
        return seconds, local, created
    finally:
        for clone, base in clones:
            bazel("shutdown", startup=[f"--output_base={base}"], check=False, cwd=clone)
            shutil.rmtree(base, ignore_errors=True)
            shutil.rmtree(clone, ignore_errors=True)


def bench_warm_cache(baseline: str) -> None:
    """Measurement 3: a fresh clone's build from a warm remote cache, HEAD against a baseline."""
    work = pathlib.Path(tempfile.mkdtemp(prefix="bench_envs.warm."))
    try:
        with remote_cache(work) as url:
            for rev in [r for r in ("HEAD", baseline) if r]:
                seconds, local, created = warm_cache_build(rev, url, work)
                print(f"warm cache, fresh clone of {rev}: bazel build //models:implicit_repo"
                      f" {seconds:.1f} s, {local} local actions, environments created"
                      f" {created / 1e9:.2f} GB")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def executed_tests(output: str) -> list:
    """Test targets `bazel test` ran (not cached, not skipped)."""
    return re.findall(r"^(//\S+)\s+(?:PASSED|FAILED|FLAKY|TIMEOUT)", output, re.MULTILINE)


def bench_pin_change(backend: str, work: pathlib.Path) -> None:
    """Measurement 2: a comment-only edit of one backend's lock."""
    lock = ROOT / "generators" / "backends" / backend / "requirements_lock.txt"
    original = lock.read_text()
    log = work / f"pin_{backend}.json"
    bazel("build", *FLAGS, "//models:implicit_repo")
    bazel("test", *FLAGS, "//...", check=False)
    try:
        lock.write_text(original + "# benchmark: comment-only pin change\n")
        start = time.monotonic()
        bazel("build", *FLAGS, f"--execution_log_json_file={log}", "//models:implicit_repo")
        seconds = time.monotonic() - start
        counts = {}
        for spawn in spawns(log.read_text()):
            if spawn.get("mnemonic", "").endswith("Model"):
                counts[spawn["mnemonic"]] = counts.get(spawn["mnemonic"], 0) + 1
        tests = executed_tests(bazel("test", *FLAGS, "//...", check=False).stdout)
    finally:
        lock.write_text(original)
    print(f"comment-only edit of {lock.relative_to(ROOT)}: rebuild {seconds:.1f} s"
          f" (its environment is made anew at first use); model actions re-run: {counts}")
    print(f"  tests re-run: {', '.join(t.split(':')[1] for t in tests) or 'none'}")


def main() -> int:
    """Run the measurements and print them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-fresh", action="store_true")
    parser.add_argument("--pin-backends", default="savedmodel,onnx")
    parser.add_argument("--warm-cache", action="store_true")
    parser.add_argument("--baseline", default="", help="commit to compare the warm-cache build with")
    args = parser.parse_args()
    if not args.skip_fresh:
        bench_fresh_onnx()
    if args.warm_cache:
        bench_warm_cache(args.baseline)
    work = pathlib.Path(tempfile.mkdtemp(prefix="bench_envs."))
    try:
        for backend in filter(None, args.pin_backends.split(",")):
            bench_pin_change(backend, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        bazel("build", *FLAGS, "//models:implicit_repo", check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
