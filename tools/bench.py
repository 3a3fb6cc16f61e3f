"""Build benchmark: the standalone CLI against Bazel, measured in one run.

    python3 tools/bench.py [--backends onnx,python,savedmodel,libtorch] [--repeat 3]

With --backends naming a subset, the CLI generates only those backends and
the cold Bazel build builds only their model targets (measurements 1-2).

Prints, on this machine and in this run:
  1. the standalone CLI generating every model (one process, hermetic env);
  2. a cold `bazel build //models:implicit_repo` (after `bazel clean`: server
     up and toolchain fetched, no action cache) and its ratio to the CLI;
  3. a no-op rebuild;
  4. a rebuild after a one-line change to one backend's builder, with the
     actions re-run by mnemonic (the change is reverted afterwards);
  5. a clean rebuild served from a local HTTP remote cache (nginx, started
     and stopped here) and its ratio to the cold build;
  6. each of upstream's 7 CPU pipeline lines with our scripts and, with
     --upstream-qa DIR (upstream r24.10's qa/common, from outside the
     project), with upstream's, side by side (tools/bench_pipeline.py).
Each timing is the median of --repeat runs. Standard library only; needs
bazel (`./bazelw` installs it), nginx and curl (`.ci/run` installs Debian's
nginx-light and curl; by hand: `apt-get install nginx-light curl`). Without
one of them it stops with one line naming what to install, before measuring
anything.
"""

import argparse
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import bench_pipeline  # noqa: E402
from check_cache_hits import spawns  # noqa: E402

TARGET = "//models:implicit_repo"
# The families //models:implicit_repo holds on a CPU machine (plans need a GPU).
CPU_BACKENDS = frozenset({"libtorch", "onnx", "python", "savedmodel"})
FLAGS = ["--color=no", "--curses=no", "--noshow_progress"]


def bazel(*args, check=True):
    """Run bazel in the workspace; returns the completed process."""
    return subprocess.run(["bazel", *args], cwd=ROOT, check=check, capture_output=True, text=True)


def timed(fn):
    """Seconds taken by fn()."""
    start = time.monotonic()
    fn()
    return time.monotonic() - start


def median_of(repeat, prepare, run):
    """Median seconds of run() over repeat rounds, prepare() untimed before each."""
    times = []
    for _ in range(repeat):
        prepare()
        times.append(timed(run))
    return statistics.median(times)


def spawn_counts(log: pathlib.Path) -> dict:
    """Spawns per mnemonic in an execution log, remote-cache hits excluded."""
    counts = {}
    for spawn in spawns(log.read_text()):
        if not spawn.get("remoteCacheHit"):
            counts[spawn["mnemonic"]] = counts.get(spawn["mnemonic"], 0) + 1
    return counts


def model_targets(backends):
    """The assembled repository, or the given backends' own (`//models:<backend>_repo`)."""
    if set(backends) >= CPU_BACKENDS:
        return [TARGET]
    return [f"//models:{b}_repo" for b in backends]


def bench_cli(backends, repeat):
    """Median seconds of the CLI writing every model of the backends."""
    python = pathlib.Path(bazel("info", "output_base").stdout.strip()) / "external/python_cli/python3"
    flags = [f"--{b}" for b in backends]

    def run():
        out = tempfile.mkdtemp()
        subprocess.run([str(python), "-m", "generators.gen_qa_implicit_models", "--models_dir", out,
                        "--all", *flags], cwd=ROOT, check=True, capture_output=True,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
        shutil.rmtree(out)
    return median_of(repeat, lambda: None, run)


def bench_one_line_change(builder: pathlib.Path, work: pathlib.Path):
    """Seconds and re-run actions after appending one line to a builder."""
    original = builder.read_text()
    log = work / "change.json"
    try:
        builder.write_text(original + "# benchmark: one-line change\n")
        seconds = timed(lambda: bazel("build", *FLAGS, f"--execution_log_json_file={log}", TARGET))
    finally:
        builder.write_text(original)
    counts = spawn_counts(log)
    bazel("build", *FLAGS, TARGET)
    return seconds, counts


def bench_remote_cache(repeat, work: pathlib.Path):
    """Median seconds of a clean rebuild served by a fresh local HTTP cache."""
    cache_dir = work / "cache"
    script = (f"source {ROOT}/tools/remote_cache.sh && start_remote_cache {cache_dir} >/dev/null"
              " && echo $CACHE_WRITE_URL $CACHE_PID && wait")  # bench fills it: writes
    server = subprocess.Popen(["bash", "-c", script], stdout=subprocess.PIPE, text=True)
    url, _ = server.stdout.readline().split()
    remote = ["--remote_cache=" + url, "--remote_upload_local_results=true"]
    try:
        bazel("clean")
        bazel("build", *FLAGS, *remote, TARGET)  # fill the cache
        seconds = median_of(repeat, lambda: bazel("clean"),
                            lambda: bazel("build", *FLAGS, *remote, TARGET))
        log = work / "remote.json"
        bazel("clean")
        bazel("build", *FLAGS, *remote, f"--execution_log_json_file={log}", TARGET)
        local = spawn_counts(log)
    finally:
        subprocess.run(["pkill", "-P", str(server.pid)], check=False)
        server.wait()
    return seconds, local


# Programs the measurements run -> how to get them.
TOOLS = {
    "bazel": "run ./bazelw once (it installs Bazel 4.2.3 from Debian)",
    "nginx": "apt-get install nginx-light (the remote cache of measurement 5)",
    "curl": "apt-get install curl (probes the remote cache)",
}


def missing_tools() -> list:
    """One line per program of TOOLS not on PATH."""
    return [f"{tool}: {how}" for tool, how in TOOLS.items() if shutil.which(tool) is None]


def main() -> int:
    """Run every measurement and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default=",".join(sorted(CPU_BACKENDS)))
    parser.add_argument("--change", default="onnx", help="backend whose builder gets the one-line change")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--upstream-qa", type=pathlib.Path,
                        help="folder with upstream r24.10's qa/common generator scripts")
    args = parser.parse_args()
    missing = missing_tools()
    if missing:
        sys.stderr.write(f"bench: not on PATH, nothing measured: {'; '.join(missing)}\n")
        return 2
    backends = args.backends.split(",")
    work = pathlib.Path(tempfile.mkdtemp(prefix="bench."))
    # Start the server, fetch the environments (the CLI runs in `cli`).
    bazel("build", *FLAGS, TARGET, "@python_cli//:python3")
    manifest = json.loads((ROOT / "bazel-bin/models/implicit_repo/manifest.json").read_text())
    models = sum(m["variant"]["backend"] in backends for m in manifest["models"])
    cli = bench_cli(backends, args.repeat)
    targets = model_targets(backends)
    cold = median_of(args.repeat, lambda: bazel("clean"), lambda: bazel("build", *FLAGS, *targets))
    bazel("build", *FLAGS, TARGET)
    noop = median_of(args.repeat, lambda: None, lambda: bazel("build", *FLAGS, TARGET))
    builder = ROOT / "generators" / "backends" / args.change / f"{args.change}_builder.py"
    change, rerun = bench_one_line_change(builder, work)
    remote, remote_local = bench_remote_cache(args.repeat, work)
    shutil.rmtree(work, ignore_errors=True)
    print(f"models: {models} ({', '.join(backends)}); median of {args.repeat} runs")
    print(f"standalone CLI, all models:         {cli:7.2f} s")
    print(f"bazel cold build (after clean):     {cold:7.2f} s  ratio to CLI {cold / cli:.2f}x"
          f"  ({len(targets)} target(s))")
    print(f"bazel no-op rebuild:                {noop:7.2f} s")
    print(f"one-line change to {args.change}_builder.py: {change:7.2f} s  re-ran {rerun}")
    if targets == [TARGET]:
        print(f"clean rebuild from remote cache:    {remote:7.2f} s  ratio to cold {remote / cold:.2f}x;"
              f" local actions {remote_local}")
    else:
        print(f"clean rebuild from remote cache:    {remote:7.2f} s  (whole repository; local actions"
              f" {remote_local})")
    sources = {"ours": ROOT / "generators"}
    if args.upstream_qa:
        sources["upstream"] = args.upstream_qa.resolve()
    lines = bench_pipeline.cpu_lines()
    results = bench_pipeline.measure(lines, sources, bench_pipeline.default_python(), args.repeat)
    bench_pipeline.report(lines, sources, results, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
