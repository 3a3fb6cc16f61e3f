"""What the model matrix costs: a baseline commit against this one, measured side by side.

    python3 tools/bench_matrix.py --baseline REV [--repeat N] [--no-e2e]

For the baseline commit and for HEAD, each in its own git worktree (with
`../shared` linked beside it, as a clone has it) and its own Bazel output
base, in alternating rounds so both see the same machine:
  1. the models //models:implicit_repo holds (its manifest), per family;
  2. a cold `bazel build //models:implicit_repo`: server up and external
     repositories fetched, then `bazel clean`, so every model action runs
     (the Python environments come from the machine's store, as on any
     machine that has built once);
  3. the real-backend e2e, `bazel test //tests:real_server_e2e_test
     --config=real_backends --nocache_test_results`: the wall time of the
     command and the test's own time from its test.xml (skipped with
     --no-e2e).
Each timing is the median of --repeat rounds. Prints one table; the
worktrees and output bases are removed at the end. Standard library only;
needs git and ./bazelw's Bazel.
"""

import argparse
import collections
import json
import pathlib
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, List

ROOT = pathlib.Path(__file__).resolve().parent.parent
TARGET = "//models:implicit_repo"
E2E = "//tests:real_server_e2e_test"
FLAGS = ["--color=no", "--curses=no", "--noshow_progress"]


class Checkout:
    """One commit in its own worktree and output base."""

    def __init__(self, rev: str, work: pathlib.Path, label: str):
        """Add the worktree `work/<label>/repo` at `rev`, with `../shared` linked beside it."""
        self.label = label
        self.home = work / label
        self.repo = self.home / "repo"
        self.output_base = self.home / "output_base"
        self.home.mkdir()
        subprocess.run(["git", "worktree", "add", "--detach", str(self.repo), rev], cwd=ROOT,
                       check=True, capture_output=True)
        shared = ROOT.parent / "shared"
        if shared.exists():
            (self.home / "shared").symlink_to(shared.resolve())
        self.commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=self.repo,
                                     check=True, capture_output=True, text=True).stdout.strip()

    def bazel(self, *args: str) -> subprocess.CompletedProcess:
        """Run ./bazelw in the worktree with this checkout's output base; raises on failure."""
        result = subprocess.run(["./bazelw", f"--output_base={self.output_base}", *args],
                                cwd=self.repo, capture_output=True, text=True)
        if result.returncode != 0:
            sys.exit(f"bench_matrix: {self.label} ({self.commit}): bazel {' '.join(args)} failed:\n"
                     f"{result.stderr[-3000:]}")
        return result

    def timed(self, *args: str) -> float:
        """Seconds one bazel command takes."""
        start = time.monotonic()
        self.bazel(*args)
        return time.monotonic() - start

    def cold_build(self) -> float:
        """Seconds of a build after `bazel clean`, the server and repositories warm."""
        self.bazel("build", *FLAGS, "--nobuild", TARGET)
        self.bazel("clean")
        return self.timed("build", *FLAGS, TARGET)

    def models(self) -> Dict[str, int]:
        """Family -> models in the built repository's manifest."""
        bin_dir = pathlib.Path(self.bazel("info", "bazel-bin").stdout.strip())
        manifest = json.loads((bin_dir / "models/implicit_repo/manifest.json").read_text())
        return dict(collections.Counter(m["variant"]["backend"] for m in manifest["models"]))

    def e2e(self) -> List[float]:
        """[command seconds, the test's own seconds] of the real-backend e2e."""
        seconds = self.timed("test", *FLAGS, "--config=real_backends", "--nocache_test_results", E2E)
        testlogs = pathlib.Path(self.bazel("info", "bazel-testlogs").stdout.strip())
        xml = (testlogs / "tests/real_server_e2e_test/test.xml").read_text()
        match = re.search(r'time="([0-9.]+)"', xml)
        return [seconds, float(match.group(1)) if match else float("nan")]

    def remove(self) -> None:
        """Stop the Bazel server, drop the output base and the worktree."""
        subprocess.run(["./bazelw", f"--output_base={self.output_base}", "shutdown"],
                       cwd=self.repo, capture_output=True)
        for path in self.output_base.rglob("*"):
            if path.is_dir() and not path.is_symlink():
                path.chmod(0o755)
        shutil.rmtree(self.output_base, ignore_errors=True)
        subprocess.run(["git", "worktree", "remove", "--force", str(self.repo)], cwd=ROOT,
                       capture_output=True)


def main(argv=None) -> int:
    """Measure both commits and print the table."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", required=True, help="the commit to compare with HEAD")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--no-e2e", action="store_true", help="skip the real-backend e2e")
    args = parser.parse_args(argv)
    work = pathlib.Path(tempfile.mkdtemp(prefix="bench-matrix-"))
    checkouts = []
    try:
        checkouts = [Checkout(args.baseline, work, "baseline"), Checkout("HEAD", work, "head")]
        builds = {c.label: [] for c in checkouts}
        e2e = {c.label: [] for c in checkouts}
        for round_ in range(args.repeat):
            for checkout in checkouts:
                print(f"round {round_ + 1}/{args.repeat}: {checkout.label} ({checkout.commit})",
                      file=sys.stderr, flush=True)
                builds[checkout.label].append(checkout.cold_build())
                if not args.no_e2e:
                    e2e[checkout.label].append(checkout.e2e())
        print(f"{'':10} {'commit':8} {'models':>6}  {'cold build':>10}  {'e2e':>7}  {'e2e test':>8}"
              "  models per family")
        for checkout in checkouts:
            counts = checkout.models()
            runs = e2e[checkout.label]
            wall = f"{statistics.median(r[0] for r in runs):6.1f}s" if runs else "      -"
            own = f"{statistics.median(r[1] for r in runs):7.1f}s" if runs else "       -"
            families = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
            print(f"{checkout.label:10} {checkout.commit:8} {sum(counts.values()):6}"
                  f"  {statistics.median(builds[checkout.label]):9.1f}s  {wall}  {own}  {families}")
        base, head = (statistics.median(builds[c.label]) for c in checkouts)
        print(f"cold build ratio head/baseline: {head / base:.2f}")
    finally:
        for checkout in checkouts:
            checkout.remove()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
