"""Per-backend environments benchmark: what one family's build creates, and what a pin re-runs.

    python3 tools/bench_envs.py [--skip-fresh] [--pin-backends savedmodel,onnx]

Prints, on this machine and in this run:
  1. a build of the ONNX family alone (`//models:onnx_repo`) in a fresh
     output base (Bazel server start, environments created from the warm pip
     cache, models built): seconds end to end, the environments created with
     their sizes, and whether any holds TensorFlow or torch;
  2. for each backend of --pin-backends, a comment-only edit of its lock
     (reverted afterwards): the model actions it re-ran by mnemonic (from the
     execution log of `bazel build //models:implicit_repo`) and the tests
     `bazel test //...` re-ran instead of taking from its cache.
Standard library only; needs bazel (./bazelw installs it).
"""

import argparse
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


def bazel(*args, startup=(), check=True):
    """Run bazel in the workspace; returns the completed process."""
    return subprocess.run(["bazel", *startup, *args], cwd=ROOT, check=check,
                          capture_output=True, text=True)


def tree_bytes(path: pathlib.Path) -> int:
    """Bytes of the regular files under path (symlinks not followed)."""
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def bench_fresh_onnx() -> None:
    """Measurement 1: the ONNX family alone from a fresh output base."""
    base = pathlib.Path(tempfile.mkdtemp(prefix="bench_envs."))
    startup = [f"--output_base={base}"]
    try:
        start = time.monotonic()
        bazel("build", *FLAGS, "//models:onnx_repo", startup=startup)
        seconds = time.monotonic() - start
        created = sorted(p for p in (base / "external").glob("python_*") if p.is_dir())
        print(f"fresh output base, bazel build //models:onnx_repo: {seconds:.1f} s end to end")
        total = 0
        for env in created:
            size = tree_bytes(env)
            total += size
            site = next((env / "env" / "lib").glob("python3*/site-packages"))
            found = [f for f in FRAMEWORKS if (site / f).exists()]
            print(f"  created {env.name}: {size / 1e6:.0f} MB; frameworks: {found or 'none'}")
        print(f"  environments created: {len(created)}, {total / 1e6:.0f} MB in all")
    finally:
        bazel("shutdown", startup=startup, check=False)
        shutil.rmtree(base, ignore_errors=True)


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
          f" (environment re-created); model actions re-run: {counts}")
    print(f"  tests re-run: {', '.join(t.split(':')[1] for t in tests) or 'none'}")


def main() -> int:
    """Run the measurements and print them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-fresh", action="store_true")
    parser.add_argument("--pin-backends", default="savedmodel,onnx")
    args = parser.parse_args()
    if not args.skip_fresh:
        bench_fresh_onnx()
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
