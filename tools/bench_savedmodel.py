"""Times building every savedmodel variant three ways, side by side.

    python3 tools/bench_savedmodel.py [--out DIR] [--skip-fresh] [--multi-state]

The variants are the savedmodel models of the matrix (configs/matrix.json):
fixed [1] batch and nobatch, variable [-1] batch, initial state
none/zero/file, four dtypes (36 models). `--multi-state` adds the matrix's
multi-state repositories built with the savedmodel backend (16 more).

- one process: one interpreter imports TensorFlow and builds every model in
  a loop (fastest, but saved_model.pb then depends on build order);
- worker: the Bazel persistent worker (`savedmodel_generator
  --persistent_worker`), which imports once and forks a child per model;
- fresh: one `savedmodel_generator --spec ... --out ...` process per model.

Each mode is timed end to end from outside (interpreter start and imports
included). The worker's and the fresh processes' trees are then compared
file by file; they must be byte-identical.
"""

import argparse
import json
import pathlib
import subprocess
import sys
import tempfile
import time
from typing import List

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from generators.manifest import file_digests  # noqa: E402
from generators.matrix import expand, load_matrix  # noqa: E402
from generators.variant import Strategy, Variant  # noqa: E402

GENERATOR = ["-m", "generators.backends.savedmodel.savedmodel_generator"]
_IN_PROCESS = """
import json, pathlib, sys
from generators.build_options import BuildOptions
from generators.variant import Variant
from generators.writer import write_model_dir
for spec, out in json.load(sys.stdin):
    write_model_dir(Variant.from_json(spec), BuildOptions(), pathlib.Path(out))
"""


def savedmodel_variants(multi_state: bool = False) -> List[Variant]:
    """The matrix's savedmodel models; with multi_state, also its multi-state repositories."""
    matrix = load_matrix()
    repositories = [
        dict(repo, backends=["savedmodel"])
        for repo in matrix["repositories"]
        if "savedmodel" in repo["backends"]
        or (multi_state and "state_pair_sets" in repo and repo["strategy"] == Strategy.DIRECT.value)
    ]
    entries = expand(dict(matrix, repositories=repositories))
    return [entry.variant for entry in entries]


def _jobs(variants: List[Variant], out: pathlib.Path) -> List[tuple]:
    return [(v.to_json(), str(out / f"{index:02d}_{v.name}")) for index, v in enumerate(variants)]


def _python(args: List[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, check=True, stderr=subprocess.DEVNULL, **kwargs
    )


def run_in_process(jobs: List[tuple]) -> None:
    """Build every model in one interpreter, no forking."""
    _python(["-c", _IN_PROCESS], input=json.dumps(jobs).encode())


def run_worker(jobs: List[tuple]) -> None:
    """Build every model through the persistent worker, one request at a time."""
    worker = subprocess.Popen(
        [sys.executable, *GENERATOR, "--persistent_worker"], cwd=ROOT,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )
    try:
        for request_id, (spec, out) in enumerate(jobs, 1):
            request = {"arguments": ["--spec", spec, "--out", out], "requestId": request_id}
            worker.stdin.write(json.dumps(request).encode())  # Bazel sends no newline
            worker.stdin.flush()
            response = json.loads(worker.stdout.readline())
            if response["exitCode"] != 0:
                raise RuntimeError(f"worker failed on {spec}: {response['output']}")
    finally:
        worker.stdin.close()
        worker.wait()


def run_fresh(jobs: List[tuple]) -> None:
    """Build every model in its own fresh generator process."""
    for spec, out in jobs:
        _python([*GENERATOR, "--spec", spec, "--out", out])


def _timed(label: str, run, jobs: List[tuple]) -> float:
    started = time.monotonic()
    run(jobs)
    seconds = time.monotonic() - started
    print(f"{label:<34} {seconds:7.2f} s  ({seconds / len(jobs):.3f} s/model)", flush=True)
    return seconds


def _differences(first: List[tuple], second: List[tuple]) -> List[str]:
    return [
        a_out for (_, a_out), (_, b_out) in zip(first, second, strict=True)
        if file_digests(pathlib.Path(a_out)) != file_digests(pathlib.Path(b_out))
    ]


def main(argv=None) -> int:
    """Run the modes, print their times, ratios and the byte comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, help="keep the trees here (default: temp)")
    parser.add_argument("--skip-fresh", action="store_true", help="skip the slow fresh mode")
    parser.add_argument("--multi-state", dest="multi_state", action="store_true",
                        help="add the multi-state repositories, built as savedmodel")
    args = parser.parse_args(argv)
    out = args.out or pathlib.Path(tempfile.mkdtemp(prefix="bench_savedmodel."))
    variants = savedmodel_variants(args.multi_state)
    print(f"{len(variants)} savedmodel variants, trees under {out}")
    modes = {name: _jobs(variants, out / name) for name in ("one_process", "worker", "fresh")}
    one = _timed("one process, no fork", run_in_process, modes["one_process"])
    worker = _timed("worker, fork per model", run_worker, modes["worker"])
    print(f"worker / one process: {worker / one:.2f}x (target <= 1.5x)")
    differing = _differences(modes["one_process"], modes["worker"])
    print(f"one-process trees differing from the worker's: {len(differing)} of {len(variants)}")
    if args.skip_fresh:
        return 0
    fresh = _timed("fresh process per model", run_fresh, modes["fresh"])
    print(f"fresh / worker: {fresh / worker:.2f}x")
    differing = _differences(modes["worker"], modes["fresh"])
    print(f"worker trees differing from fresh processes': {len(differing)} of {len(variants)}")
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
