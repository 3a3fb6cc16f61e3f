"""Upstream's pipeline lines timed with our scripts and, given a copy, upstream's.

    python3 tools/bench_pipeline.py [--python PY] [--upstream-qa DIR] [--repeat 5]

Runs each CPU line of `tests/upstream_pipeline_lines.sh` (the implicit-state
lines of Triton's `qa/common/gen_qa_model_repository` at r24.10; the
TensorRT lines need a GPU) through bash as upstream's script runs them:
`SRCDIR` is this checkout's `generators/`, `ONNX_OPSET=0`, fresh destination
folders, and `python3` on PATH is `--python` (by default the Bazel `cli`
environment's interpreter, which holds every backend's lock). With
`--upstream-qa DIR` (a folder holding upstream's `gen_qa_implicit_models.py`,
`gen_qa_dyna_sequence_implicit_models.py` and their helper modules, taken
from a checkout outside this project; never commit them) the same lines run
with `SRCDIR=DIR` in the same interpreter, interleaved with ours, so both
see the same machine load.

Each line runs once untimed first, so every script's cached bytecode exists
(as on any machine after its first run). Prints, per line, the median wall
time of --repeat runs and the `-X
importtime` total (the sum of every module's own import time, one extra run)
for ours and upstream's, then the totals and their ratio. Standard library
only.
"""

import argparse
import os
import pathlib
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
LINES = ROOT / "tests" / "upstream_pipeline_lines.sh"
IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|")


def cpu_lines() -> list:
    """The pipeline lines that need no GPU (every line but the TensorRT ones)."""
    lines = [line for line in LINES.read_text().splitlines() if line and not line.startswith("#")]
    return [line for line in lines if "--tensorrt" not in shlex.split(line)]


def default_python() -> pathlib.Path:
    """The Bazel `cli` environment's interpreter (its launcher makes it on first use).

    The venv's own `python3`, not the launcher: the launcher's `-P` drops the
    script's folder from sys.path, through which upstream's scripts import
    their neighbours (ours do not need it).
    """
    subprocess.run(["bazel", "build", "--noshow_progress", "@python_cli//:python3"],
                   cwd=ROOT, check=True, capture_output=True)
    base = subprocess.run(["bazel", "info", "output_base"], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout.strip()
    launcher = pathlib.Path(base) / "external" / "python_cli" / "python3"
    prefix = subprocess.run([str(launcher), "-c", "import sys; print(sys.prefix)"], check=True,
                            capture_output=True, text=True).stdout.strip()
    return pathlib.Path(prefix) / "bin" / "python3"


def run_line(line: str, srcdir: pathlib.Path, python: pathlib.Path, importtime: bool) -> tuple:
    """Seconds one line took and, with importtime, its summed import microseconds."""
    work = pathlib.Path(tempfile.mkdtemp(prefix="pipeline."))
    bindir = work / "bin"
    bindir.mkdir()
    # A wrapper, not a symlink: a venv's interpreter finds its pyvenv.cfg
    # beside the path it was started by.
    (bindir / "python3").write_text(f'#!/bin/sh\nexec {shlex.quote(str(python))} "$@"\n')
    (bindir / "python3").chmod(0o755)
    # As a user runs them: no PYTHONPATH, and bytecode cached (a shell that
    # sets PYTHONDONTWRITEBYTECODE would recompile every module each run).
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE")}
    env.update(PATH=f"{bindir}{os.pathsep}{env.get('PATH', '')}", SRCDIR=str(srcdir), ONNX_OPSET="0")
    for name in re.findall(r"--models_dir=\$(\w+)", line):
        env[name] = str(work / name)
        (work / name).mkdir()
    if importtime:
        env["PYTHONPROFILEIMPORTTIME"] = "1"
    start = time.monotonic()
    done = subprocess.run(["bash", "-c", line], cwd=work, env=env, capture_output=True, text=True)
    seconds = time.monotonic() - start
    shutil.rmtree(work)
    if done.returncode != 0:
        raise SystemExit(f"bench_pipeline: `{line}` with SRCDIR={srcdir} exited "
                         f"{done.returncode}:\n{done.stderr[-2000:]}")
    micros = sum(int(m.group(1)) for m in map(IMPORT_LINE.match, done.stderr.splitlines()) if m)
    return seconds, micros


def measure(lines, sources: dict, python, repeat) -> dict:
    """{(source, line): (median seconds, import ms)}, sources interleaved per round."""
    times = {(name, line): [] for name in sources for line in lines}
    for line in lines:  # untimed: writes each script's and module's cached bytecode
        for srcdir in sources.values():
            run_line(line, srcdir, python, False)
    for _ in range(repeat):
        for line in lines:
            for name, srcdir in sources.items():
                times[(name, line)].append(run_line(line, srcdir, python, False)[0])
    return {key: (statistics.median(runs), run_line(key[1], sources[key[0]], python, True)[1] / 1000)
            for key, runs in times.items()}


def short(line: str) -> str:
    """A line without its interpreter, SRCDIR and destination, for the table."""
    words = [w for w in shlex.split(line)[1:] if not w.startswith(("--models_dir", "--onnx_opset"))]
    return " ".join(w.replace("$SRCDIR/", "") for w in words)


def report(lines, sources, results, repeat) -> None:
    """The per-line table, totals and ratio."""
    names = list(sources)
    print(f"upstream's CPU pipeline lines, median of {repeat} runs (import ms from -X importtime)")
    header = "".join(f"{n:>12} s {'imports':>9}" for n in names)
    print(f"{'line':64}{header}")
    for line in lines:
        cells = "".join(f"{results[(n, line)][0]:14.3f} {results[(n, line)][1]:6.0f} ms" for n in names)
        print(f"{short(line):64}{cells}")
    totals = {n: sum(results[(n, line)][0] for line in lines) for n in names}
    print(f"{'total':64}" + "".join(f"{totals[n]:14.3f} {'':9}" for n in names))
    if "upstream" in totals:
        per_line = ", ".join(f"{results[('ours', line)][0] / results[('upstream', line)][0]:.2f}"
                             for line in lines)
        print(f"ratio ours / upstream: {totals['ours'] / totals['upstream']:.2f} (per line: {per_line})")


def main() -> int:
    """Time the lines and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", type=pathlib.Path, help="interpreter with every backend's lock")
    parser.add_argument("--upstream-qa", type=pathlib.Path,
                        help="folder with upstream r24.10's qa/common generator scripts")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    python = args.python or default_python()
    sources = {"ours": ROOT / "generators"}
    if args.upstream_qa:
        script = args.upstream_qa / "gen_qa_implicit_models.py"
        if not script.is_file():
            sys.stderr.write(f"bench_pipeline: --upstream-qa {args.upstream_qa} has no "
                             "gen_qa_implicit_models.py; give the folder of upstream's qa/common\n")
            return 2
        sources["upstream"] = args.upstream_qa.resolve()
    lines = cpu_lines()
    report(lines, sources, measure(lines, sources, python, args.repeat), args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
