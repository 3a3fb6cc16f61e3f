"""Soak: the real-backend e2e run N times while every core is kept busy.

    python3 tools/soak_e2e.py [--runs 5] [--burners N] [--config real_backends]

A wrong answer that shows only on a loaded machine is the worst kind
(issue 16), so this runs `bazel test //tests:real_server_e2e_test
--config=<config> --nocache_test_results` --runs times while --burners
processes (default: one per core) spin the CPU. The burners are started
and stopped here, by PID, whatever happens. Per run it prints whether the
test passed, its tests / failures / errors and wrong answers (the e2e's
`e2e summary:` line), the server log lines that are errors beyond
verification/server_log.py's allowlist (read from the test's outputs.zip), and
the load run's figures per family; then a table. Exits 1 when any run
failed. Standard library only; needs bazel (./bazelw installs it) and the
backends the configuration names.
"""

import argparse
import io
import os
import pathlib
import re
import signal
import subprocess
import sys
import time
import zipfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from verification.server_log import unexpected_errors  # noqa: E402 - after the path is set

TARGET = "//tests:real_server_e2e_test"
TESTLOGS = ROOT / "bazel-testlogs" / "tests" / "real_server_e2e_test"
_SUMMARY = re.compile(r"^e2e summary: tests=(\d+) failures=(\d+) errors=(\d+) wrong_answers=(\d+)$",
                      re.MULTILINE)
_LOAD = re.compile(r"^load \[(\w+)\]: .* = (\d+) requests/s, (\d+) wrong, ([\d.]+) requests per"
                   r" execution$", re.MULTILINE)
_BURN = "while True:\n    pass\n"


def start_burners(count):
    """`count` processes that spin one core each; returns them."""
    return [subprocess.Popen([sys.executable, "-c", _BURN], stdin=subprocess.DEVNULL)  # noqa: S603
            for _ in range(count)]


def stop_burners(burners):
    """Stop every burner by its PID."""
    for burner in burners:
        if burner.poll() is None:
            os.kill(burner.pid, signal.SIGKILL)
        burner.wait()


def server_error_lines():
    """Error lines beyond the allowlist in every server log of the last run's outputs."""
    archive = TESTLOGS / "test.outputs" / "outputs.zip"
    folder = TESTLOGS / "test.outputs"
    logs = {}
    if archive.is_file():
        with zipfile.ZipFile(archive) as zipped:
            for name in zipped.namelist():
                if name.endswith(".log"):
                    logs[name] = io.TextIOWrapper(zipped.open(name), errors="replace").readlines()
    for path in folder.glob("*.log"):
        logs[path.name] = path.read_text(errors="replace").splitlines()
    return {name: unexpected_errors(lines) for name, lines in logs.items()
            if unexpected_errors(lines)}


def one_run(bazel, config, index):
    """Run the e2e once; returns a dict of what it found."""
    started = time.monotonic()
    done = subprocess.run(  # noqa: S603 - fixed argv
        [bazel, "test", TARGET, f"--config={config}", "--nocache_test_results",
         "--test_output=all", "--color=no", "--curses=no"],
        cwd=ROOT, capture_output=True, text=True, check=False)
    output = done.stdout + done.stderr
    (pathlib.Path(os.environ.get("TMPDIR", "/tmp")) / f"soak_run{index}.log").write_text(output)
    summary = _SUMMARY.search(output)
    tests, failures, errors, wrong = (int(g) for g in summary.groups()) if summary else (0, 0, 0, "?")
    return {
        "passed": done.returncode == 0,
        "seconds": time.monotonic() - started,
        "tests": tests, "failures": failures, "errors": errors, "wrong": wrong,
        "server_errors": server_error_lines(),
        "load": _LOAD.findall(output),
    }


def _interrupted(signum, frame):
    del signum, frame
    raise KeyboardInterrupt


def main(argv=None):
    """Start the burners, run the e2e --runs times, print the table; exit 1 on any failure."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--burners", type=int, default=os.cpu_count() or 1,
                        help="CPU-spinning processes beside the test (default: one per core)")
    parser.add_argument("--config", default="real_backends", help="the bazel --config to test")
    parser.add_argument("--bazel", default=str(ROOT / "bazelw"))
    args = parser.parse_args(argv)
    if args.runs < 1 or args.burners < 0:
        parser.error("--runs must be at least 1 and --burners at least 0")
    print(f"soak: {args.runs} run(s) of {TARGET} --config={args.config} beside"
          f" {args.burners} CPU burner(s)", flush=True)
    signal.signal(signal.SIGTERM, _interrupted)  # stop the burners when killed too
    burners = start_burners(args.burners)
    print(f"burner PIDs: {' '.join(str(b.pid) for b in burners) or 'none'}", flush=True)
    results = []
    try:
        for index in range(1, args.runs + 1):
            result = one_run(args.bazel, args.config, index)
            results.append(result)
            lines = sum(len(v) for v in result["server_errors"].values())
            load = "; ".join(f"{fam} {rps} req/s {wrong} wrong {per} req/exec"
                             for fam, rps, wrong, per in result["load"])
            print(f"run {index}: {'PASSED' if result['passed'] else 'FAILED'} in"
                  f" {result['seconds']:.0f}s, tests {result['tests']}, failures"
                  f" {result['failures']}, errors {result['errors']}, wrong answers"
                  f" {result['wrong']}, server error lines {lines}; load: {load}", flush=True)
            for name, found in result["server_errors"].items():
                print(f"  {name}: " + "\n  ".join(found[:5]), flush=True)
    finally:
        stop_burners(burners)
    failed = [i for i, r in enumerate(results, 1) if not r["passed"]]
    print(f"\nsoak: {len(results) - len(failed)} of {len(results)} run(s) passed"
          f"{'; failed runs: ' + ', '.join(map(str, failed)) if failed else ''}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
