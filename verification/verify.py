"""Verify a Triton installation against the generated models: `bazel run //verification:verify`.

    bazel run //verification:verify -- --triton-home /opt/tritonserver [--repo DIR] [--family onnx]
        [--repository NAME] [--expect-fixed 8586,6538] [--invalid-repo DIR]
    bazel run //verification:verify -- --real-backends     (Triton's CPU backends beside the checkout)

Runs the real-server checks of verification/checks.py and
verification/catalogue_checks.py (the same sequences, contract literals and
known-bug reproducers as `bazel test //tests:real_server_e2e_test`)
on a repository tree built anywhere (`--repo`: a folder holding
manifest.json and the repository folders, e.g. `bazel-bin/models/implicit_repo`
or the CLI's `--models_dir`; default: the `//models:implicit_repo` this
binary was built with). The server is `--triton-home`, or `--triton-server`
and/or `--backend-dir`; with none, the pinned nvidia-pytriton wheel's
(`--real-backends`: that server with Triton's CPU backends from
`../shared/triton/backends`, verification.real_backends). The pinned server
serving a folder with tensorflow/ or pytorch/ gets those frameworks'
libraries from the project's own environments.
Prints a line per model as its repository finishes, then a table per family
(models, how many loaded, how many were sent a sequence, sequences, known-bug
models, problems; ok only when every model loaded and was sent a sequence
and nothing failed, verification.family_rows), the families not tested and
why, any backend folder the checks do not know, then the verdict on every
entry of the known-bug catalogue (verification/catalogue.json: present,
fixed, not testable here with the reason, or FAIL) and the invalid-model
repository's line (`--invalid-repo`, by default the //models:invalid_repo
this binary was built with: every model refused naming its problem, or
loading as a catalogued bug predicts). Exits 1 on any problem, when no
family could be tested, or when a verdict is FAIL: an answer that is
neither the contract's nor a catalogued bug's prediction, or an entry named
by `--expect-fixed` that is present (or could not be tested); 2 on bad
arguments.
"""

import argparse
import os
import pathlib
import sys
import unittest

from verification import catalogue, catalogue_checks, checks, real_backends, report
from verification.families import FAMILIES, format_discovery
from verification.installation import InstallationError
from verification.report import ModelReport, catalogue_lines, family_table
from verification.served_repository import e2e_setup

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
    parser.add_argument("--expect-fixed", default="", metavar="ID,...",
                        help="catalogue entries that must be fixed in this Triton: present (or"
                             " not testable) fails the run")
    parser.add_argument("--invalid-repo", help="the invalid-model repository (manifest.json +"
                                               " its folder): every model must be refused")
    real_backends.add_tool_arguments(parser)
    parser.add_argument("--repo-default", help=argparse.SUPPRESS)
    parser.add_argument("--invalid-repo-default", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    base = pathlib.Path(os.environ.get("BUILD_WORKING_DIRECTORY", "."))
    for name in ("triton_home", "triton_server", "backend_dir", "repo", "invalid_repo"):
        if getattr(args, name):
            setattr(args, name, str((base / getattr(args, name)).resolve()))
    args.repo = args.repo or args.repo_default
    args.invalid_repo = args.invalid_repo or args.invalid_repo_default
    try:
        catalogue.parse_ids(args.expect_fixed, report.entries())
    except catalogue.CatalogueError as err:
        parser.error(f"--expect-fixed: {err}")
    if args.invalid_repo and not (pathlib.Path(args.invalid_repo) / "manifest.json").is_file():
        parser.error(f"--invalid-repo {args.invalid_repo}: no manifest.json there; give the folder"
                     " //models:invalid_repo builds (bazel-bin/models/invalid_repo)")
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
    os.environ[report.EXPECT_FIXED_VAR] = args.expect_fixed
    if args.invalid_repo:
        os.environ[catalogue_checks.INVALID_REPO_VAR] = args.invalid_repo
    else:
        os.environ.pop(catalogue_checks.INVALID_REPO_VAR, None)
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
        t for t in _tests(checks.suite())
        if getattr(t, "_testMethodName", "") != "test_report"
        and (not keep or getattr(type(t), "REPOSITORY", None) in keep
             or type(t).__name__ == "CoverageTest"))
    result = VerifyResult(out)
    result.startTestRun()
    suite(result)
    result.stopTestRun()
    lines, failed = family_table(result, setup.discovery)
    out.write("\n" + "\n".join(lines) + "\n")
    lines, verdicts_failed = catalogue_lines(setup.discovery, report.expect_fixed())
    out.write("\n" + "\n".join(lines) + "\n")
    failed = failed or verdicts_failed
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
