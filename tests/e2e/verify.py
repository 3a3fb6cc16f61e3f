"""Verify a generated repository against a Triton installation: `bazel run //tests:verify`.

    bazel run //tests:verify -- --triton-home /opt/tritonserver [--repo DIR] [--family onnx]

Runs the real-server checks of tests/e2e/implicit_state_e2e_test.py (the
same sequences and contract literals as `bazel test //tests:real_server_e2e_test`)
on a repository tree built anywhere (`--repo`: a folder holding
manifest.json and the repository folders, e.g. `bazel-bin/models/implicit_repo`
or the CLI's `--models_dir`; default: the `//models:implicit_repo` this
binary was built with). The server is `--triton-home`, or `--triton-server`
and/or `--backend-dir`; with none, the pinned nvidia-pytriton wheel's.
Prints a line per model as its repository finishes, then a table per family
(models served, sequences checked, problems), the families not tested and
why, and any backend folder the checks do not know. Exits 1 on any problem
or when no family could be tested, 2 on bad arguments.
"""

import argparse
import collections
import os
import pathlib
import re
import sys
import unittest

from tests.e2e import implicit_state_e2e_test as checks
from tests.e2e import sequence_client
from tests.e2e.families import FAMILIES, format_discovery
from tests.e2e.installation import InstallationError
from tests.e2e.served_repository import SERVED, e2e_setup

_CLASS = re.compile(r"\((?:[\w.]+\.)?(\w+)\)")
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


class VerifyResult(unittest.TestResult):
    """Collects problems per model and class; prints each repository's models as it finishes."""

    def __init__(self, stream):
        super().__init__()
        self.stream = stream
        self.model_problems = collections.Counter()  # (class, model) -> count
        self.class_problems = collections.Counter()  # class -> count outside a model
        self.messages = []
        self.skips = []
        self.sequences = {}  # (class, model) -> sequences sent
        self._current = None
        self._counts_before = collections.Counter()

    def _flush(self):
        name, self._current = self._current, None
        for model in SERVED.get(name, []) if name else []:
            sent = sequence_client.SEQUENCES_SENT[model.name] - self._counts_before[model.name]
            self.sequences[(name, model)] = sent
            problems = self.model_problems[(name, model.name)]
            self.stream.write(f"  [{model.family}] {model.repository}/{model.name}: {sent} sequences,"
                              f" {problems} problem(s){' FAIL' if problems else ''}\n")
        self.stream.flush()

    def startTest(self, test):  # noqa: N802 - unittest's name
        super().startTest(test)
        name = type(test).__name__
        if name != self._current:
            self._flush()
            self._current = name
            self._counts_before = collections.Counter(sequence_client.SEQUENCES_SENT)

    def stopTestRun(self):  # noqa: N802 - unittest's name
        self._flush()
        super().stopTestRun()

    def _record(self, test, err, model=None):
        name = type(test).__name__
        if isinstance(test, unittest.suite._ErrorHolder):  # setUpClass / class cleanup
            match = _CLASS.search(test.description)
            name = match.group(1) if match else test.description
        if model:
            self.model_problems[(name, model)] += 1
        else:
            self.class_problems[name] += 1
        text = self._exc_info_to_string(err, test).strip().splitlines()
        self.messages.append(f"{name} {model or test}: {text[-1] if text else ''}")

    def addError(self, test, err):  # noqa: N802 - unittest's name
        super().addError(test, err)
        self._record(test, err)

    def addFailure(self, test, err):  # noqa: N802 - unittest's name
        super().addFailure(test, err)
        self._record(test, err)

    def addSubTest(self, test, subtest, err):  # noqa: N802 - unittest's name
        super().addSubTest(test, subtest, err)
        if err is not None and not issubclass(err[0], unittest.SkipTest):
            self._record(test, err, subtest.params.get("model"))

    def addSkip(self, test, reason):  # noqa: N802 - unittest's name
        super().addSkip(test, reason)
        self.skips.append(reason)


def family_table(result, setup):
    """The closing table's lines and whether any problem was found."""
    rows = {f: [0, 0, 0] for f in setup.discovery.tested}  # models, sequences, problems
    for name, models in SERVED.items():
        for model in models:
            row = rows.setdefault(model.family, [0, 0, 0])
            row[0] += 1
            row[1] += result.sequences.get((name, model), 0)
            row[2] += result.model_problems[(name, model.name)]
    unattributed = 0
    for name, count in result.class_problems.items():
        families = {m.family for m in SERVED.get(name, [])}
        for fam in families:
            rows[fam][2] += count
        unattributed += 0 if families else count
    lines = [f"{'family':<12} {'backend':<12} {'models served':>13} {'sequences':>10}"
             f" {'problems':>8}  result"]
    for fam, (models, sequences, problems) in sorted(rows.items()):
        verdict = "FAIL" if problems or not models else "ok"
        lines.append(f"{fam:<12} {FAMILIES[fam].backend:<12} {models:>13} {sequences:>10}"
                     f" {problems:>8}  {verdict}{'' if models else ' (no model served)'}")
    for fam, why in setup.discovery.not_tested.items():
        lines.append(f"{fam:<12} {FAMILIES[fam].backend:<12} {'-':>13} {'-':>10} {'-':>8}"
                     f"  NOT TESTED: {why}")
    for folder in setup.discovery.unknown:
        lines.append(f"{'?':<12} {folder:<12} {'-':>13} {'-':>10} {'-':>8}  UNKNOWN backend"
                     " folder: no family of this project is served by it; not verified")
    if unattributed:
        lines.append(f"{'(suite)':<12} {'':<12} {'':>13} {'':>10} {unattributed:>8}  FAIL")
    failed = not result.wasSuccessful() or not rows or any(
        r[2] or not r[0] for r in rows.values())
    return lines, failed


def main(argv=None):
    """Run the checks; print progress, the table and the problems. Returns the exit status."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    for variable, value in (("TRITON_HOME", args.triton_home), ("TRITON_SERVER", args.triton_server),
                            ("TRITON_BACKEND_DIR", args.backend_dir)):
        if value:
            os.environ[variable] = value
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
    lines, failed = family_table(result, setup)
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
