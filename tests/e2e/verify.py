"""Verify a generated repository against a Triton installation: `bazel run //tests:verify`.

    bazel run //tests:verify -- --triton-home /opt/tritonserver [--repo DIR] [--family onnx]
    bazel run //tests:verify -- --real-backends     (Triton's CPU backends beside the checkout)

Runs the real-server checks of tests/e2e/implicit_state_e2e_test.py (the
same sequences and contract literals as `bazel test //tests:real_server_e2e_test`)
on a repository tree built anywhere (`--repo`: a folder holding
manifest.json and the repository folders, e.g. `bazel-bin/models/implicit_repo`
or the CLI's `--models_dir`; default: the `//models:implicit_repo` this
binary was built with). The server is `--triton-home`, or `--triton-server`
and/or `--backend-dir`; with none, the pinned nvidia-pytriton wheel's
(`--real-backends`: that server with Triton's CPU backends from
`../shared/triton/backends`, tests.e2e.real_backends). The pinned server
serving a folder with tensorflow/ or pytorch/ gets those frameworks'
libraries from the project's own environments.
Prints a line per model as its repository finishes, then a table per family
(models, how many loaded, how many were sent a sequence, sequences, known-bug
models, problems; ok only when every model loaded and was sent a sequence
and nothing failed, tests.e2e.family_rows), the families not tested and
why, and any backend folder the checks do not know. Exits 1 on any problem
or when no family could be tested, 2 on bad arguments.
"""

import argparse
import os
import pathlib
import sys
import unittest

from tests.e2e import implicit_state_e2e_test as checks
from tests.e2e import real_backends
from tests.e2e.families import FAMILIES, format_discovery
from tests.e2e.installation import InstallationError
from tests.e2e.report import ModelReport, family_table
from tests.e2e.served_repository import e2e_setup

_SHOWN = 20


def parse_args(argv):
    """The command line; relative paths are taken from where `bazel run` was started."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--triton-home", help="folder with bin/tritonserver and backends/")
    parser.add_argument("--triton-server", help="a tritonserver binary (overrides --triton-home's)")
    parser.add_argument("--backend-dir", help="a folder of <backend>/ folders (overrides --triton-home's)")
    parser.add_argument("--repo", help="built tree: manifest.json + repository folders")
    parser.add_argument("--family", action="append", choices=sorted(FAMILIES),
                        help="verify only this family (repeatable; default: all the server has)")
    parser.add_argument("--repository", action="append",
                        help="verify only this repository folder (repeatable; default: all)")
    real_backends.add_tool_arguments(parser)
    parser.add_argument("--repo-default", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    base = pathlib.Path(os.environ.get("BUILD_WORKING_DIRECTORY", "."))
    for name in ("triton_home", "triton_server", "backend_dir", "repo"):
        if getattr(args, name):
            setattr(args, name, str((base / getattr(args, name)).resolve()))
    args.repo = args.repo or args.repo_default
    if not args.repo or not (pathlib.Path(args.repo) / "manifest.json").is_file():
        parser.error(f"--repo {args.repo}: no manifest.json there; give the folder the generator"
                     " wrote (bazel-bin/models/implicit_repo, or the CLI's --models_dir)")
    return args


class VerifyResult(ModelReport, unittest.TestResult):
    """Collects problems per model and class; prints each repository's models as it finishes."""

    model_lines = True

    def __init__(self, stream):
        super().__init__()
        self.stream = stream
        self.skips = []

    def addSkip(self, test, reason):  # noqa: N802 - unittest's name
        super().addSkip(test, reason)
        self.skips.append(reason)


def main(argv=None):
    """Run the checks; print progress, the table and the problems. Returns the exit status."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    for variable, value in (("TRITON_HOME", args.triton_home), ("TRITON_SERVER", args.triton_server),
                            ("TRITON_BACKEND_DIR", args.backend_dir)):
        if value:
            os.environ[variable] = value
    real_backends.use_tool_arguments(args)
    os.environ["IMPLICIT_REPO"] = args.repo
    os.environ["E2E_FAMILIES"] = ",".join(args.family or [])
    try:
        setup = e2e_setup()
    except (InstallationError, FileNotFoundError, ValueError) as err:
        sys.stderr.write(f"verify: {err}\n")
        return 2
    out = sys.stdout
    out.write(f"verify: repository tree {args.repo}\nserver: {setup.installation.source}\n"
              f"{format_discovery(setup.discovery)}\n")
    keep = set(args.repository or ())
    suite = unittest.TestSuite(  # the discovery report is printed above, not by test_report
        t for t in _tests(unittest.defaultTestLoader.loadTestsFromModule(checks))
        if getattr(t, "_testMethodName", "") != "test_report"
        and (not keep or getattr(type(t), "REPOSITORY", None) in keep
             or type(t).__name__ == "CoverageTest"))
    result = VerifyResult(out)
    result.startTestRun()
    suite(result)
    result.stopTestRun()
    lines, failed = family_table(result, setup.discovery)
    out.write("\n" + "\n".join(lines) + "\n")
    if result.messages:
        out.write(f"\nproblems ({len(result.messages)}):\n" + "\n".join(
            f"  {m}" for m in result.messages[:_SHOWN]) + "\n")
    out.write(f"\nverify: {'FAILED' if failed else 'PASSED'}\n")
    return 1 if failed else 0


def _tests(suite):
    for item in suite:
        if isinstance(item, unittest.TestSuite):
            yield from _tests(item)
        else:
            yield item


if __name__ == "__main__":
    sys.exit(main())
