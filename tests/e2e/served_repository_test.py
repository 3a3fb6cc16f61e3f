"""What a served repository's test class asserts, without a server.

- `_stop_server`: a server that exits with a status other than 0 when
  stopped (a crash during shutdown, SIGKILL after a hang) fails the class;
  0 passes.
- `test_holds_the_expected_models`: a repository missing a tested family's
  models (here: savedmodel gone from a multi-state repository) fails, per
  family, against tests/expected_models.py.
- `checks.suite`: the classes left out are exactly those of repositories the
  table gives no model of a tested family (the dyna repository when only
  python is tested), whatever the built tree holds, and the catalogue
  checks without their input (no family the bug shows in, no invalid-model
  repository).
"""

import os
import pathlib
import shutil
import tempfile
import unittest
from unittest import mock

from tests.expected_models import EXPECTED_MODELS
from verification import catalogue_checks, checks, report, served_repository
from verification.families import Discovery
from verification.sequence_client import ModelInfo

MULTI = "qa_multi_state_implicit_model_repository"
DYNA = "qa_dyna_sequence_implicit_model_repository"


class FakeServer:
    """Stands for verification.triton_server.TritonServer after a run: a clean log, an exit status."""

    def __init__(self, status, folder):
        self.status = status
        self.log_path = pathlib.Path(folder) / "tritonserver.log"
        self.log_path.write_text('I1206 12:00:00.000000 1 server.cc:1] "Waiting for..."\n')

    def stop(self):
        return self.status

    def log_tail(self):
        return self.log_path.read_text()


def setup_testing(*families):
    """An E2ESetup whose server tests `families` (no installation is touched)."""
    discovery = Discovery("backends", False, tuple(families), {}, ())
    return served_repository.E2ESetup(installation=None, discovery=discovery)


def models(family, count, repository=MULTI):
    """`count` distinct models of one family in a repository."""
    return [ModelInfo(name=f"{family}_{index}", dtype="int32", batched=True, family=family,
                      repository=repository) for index in range(count)]


class StopTest(unittest.TestCase):
    """The server's exit status when stopped is checked."""

    def stop_with(self, status):
        scratch = tempfile.mkdtemp(prefix="served_repository_test.")
        self.addCleanup(shutil.rmtree, scratch, ignore_errors=True)

        class Served(served_repository.ServedRepository):
            server = FakeServer(status, scratch)

        Served._stop_server()

    def test_clean_exit_passes(self):
        """Status 0 (and None: never started) is a clean shutdown."""
        self.stop_with(0)
        self.stop_with(None)

    def test_crash_during_shutdown_fails(self):
        """SIGSEGV (-11) or SIGKILL after a hang (-9), or exit 1: the class fails, naming it."""
        for status in (-11, -9, 1):
            with self.subTest(status=status):
                with self.assertRaisesRegex(AssertionError, f"exited with status {status} when"):
                    self.stop_with(status)


class ExpectedModelsTest(unittest.TestCase):
    """A served class compares its repository's models with the literal table."""

    def setUp(self):
        saved = dict(report.SERVED)
        self.addCleanup(lambda: (report.SERVED.clear(), report.SERVED.update(saved)))

    def outcome(self, served, *tested):
        """Run test_holds_the_expected_models of MultiStateTest on `served` models."""
        report.SERVED["MultiStateTest"] = served
        result = unittest.TestResult()
        with mock.patch.object(served_repository, "e2e_setup", return_value=setup_testing(*tested)):
            checks.MultiStateTest("test_holds_the_expected_models").run(result)
        return result

    def test_the_expected_models_pass(self):
        """8 python and 8 savedmodel models, as the table has them: no failure."""
        result = self.outcome(models("python", 8) + models("savedmodel", 8), "python", "savedmodel")
        self.assertEqual((result.testsRun, result.failures, result.errors), (1, [], []))

    def test_a_missing_family_fails(self):
        """With savedmodel gone from the repository, its family's subtest fails, python's does not."""
        result = self.outcome(models("python", 8), "python", "savedmodel")
        self.assertEqual(len(result.failures), 1)
        test, text = result.failures[0]
        self.assertEqual(test.params, {"family": "savedmodel"})
        self.assertIn("AssertionError: 0 != 8", text)

    def test_a_family_the_table_does_not_give_fails(self):
        """Models of a tested family in a repository the table gives none of are not ignored."""
        report.SERVED["DynaTest"] = models("python", 2, DYNA) + models("onnx", 2, DYNA)
        result = unittest.TestResult()
        with mock.patch.object(served_repository, "e2e_setup",
                               return_value=setup_testing("python", "onnx")):
            checks.DynaTest("test_holds_the_expected_models").run(result)
        self.assertEqual([test.params for test, _ in result.failures], [{"family": "python"}])


class LoadTestsTest(unittest.TestCase):
    """Which repository classes run is the table's call (checks.suite)."""

    def suite(self, *tested):
        """The checks verification.checks.suite keeps for a server testing `tested`."""
        setup = setup_testing(*tested)
        with mock.patch.object(served_repository, "e2e_setup", return_value=setup), \
                mock.patch.object(catalogue_checks, "e2e_setup", return_value=setup), \
                mock.patch.dict(os.environ, {catalogue_checks.INVALID_REPO_VAR: ""}):
            return list(checks._flatten(checks.suite()))

    def repositories(self, *tested):
        return {type(t).REPOSITORY for t in self.suite(*tested) if hasattr(type(t), "REPOSITORY")}

    def classes(self, *tested):
        return {type(t).__name__ for t in self.suite(*tested)}

    def test_python_only_leaves_out_the_dyna_repository(self):
        """The python family is in every repository but dyna (tests/expected_models.py)."""
        self.assertEqual(self.repositories("python"), set(EXPECTED_MODELS) - {DYNA})

    def test_onnx_is_served_everywhere(self):
        """The onnx family is in every repository, dyna included."""
        self.assertEqual(self.repositories("onnx"), set(EXPECTED_MODELS))

    def test_coverage_always_runs(self):
        """The coverage checks are kept with no family tested (they fail there)."""
        self.assertEqual(self.classes(), {"CoverageTest"})

    def test_catalogue_checks_need_their_families(self):
        """The ragged-batch check runs only with a family the bug shows in (not python alone)."""
        self.assertNotIn("RaggedStateBatchTest", self.classes("python", "savedmodel"))
        self.assertIn("RaggedStateBatchTest", self.classes("python", "onnx"))
        self.assertIn("InitialStateDimsTest", self.classes("python"))

    def test_invalid_models_need_their_repository(self):
        """The invalid-model check runs only when IMPLICIT_INVALID_REPO names a repository."""
        self.assertNotIn("InvalidModelsTest", self.classes("onnx"))
        with mock.patch.dict(os.environ, {catalogue_checks.INVALID_REPO_VAR: "/some/repo"}):
            setup = setup_testing("onnx")
            with mock.patch.object(served_repository, "e2e_setup", return_value=setup), \
                    mock.patch.object(catalogue_checks, "e2e_setup", return_value=setup):
                names = {type(t).__name__ for t in checks._flatten(checks.suite())}
        self.assertIn("InvalidModelsTest", names)


if __name__ == "__main__":
    unittest.main()
