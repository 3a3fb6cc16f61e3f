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
- `CoverageChecks.judge`: a scalar-state model's answers are the
  contract's (the entry fixed), exactly a catalogued prediction
  (verification/expectations.py SCALAR_STATE_BUG: the entry present, the
  model a known bug) or a failure; every answer's dtype counts.
- `sequence_client.run_rounds`' grouping of sequences onto streams keeps a
  model's sequences together.
- `served_config.compare`: a scalar state's empty initial-state dims tell
  nothing of how Triton renders dims (no verdict either way).
- `InvalidModelsTest`: a load on a server that dies meanwhile (its socket
  kept open, the call hanging) ends as soon as the process is gone.
"""

import os
import pathlib
import shutil
import socket
import tempfile
import time
import unittest
from unittest import mock

import numpy as np

from generators.model_config import parse_config
from tests.expected_models import EXPECTED_MODELS
from verification import (
    catalogue,
    catalogue_checks,
    checks,
    report,
    served_config,
    served_repository,
)
from verification import expectations as exp
from verification import sequence_client as client
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


def held_by(family):
    """The repositories tests/expected_models.py gives models of `family`."""
    return {repository for repository, row in EXPECTED_MODELS.items() if row.get(family)}


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
        """python: every repository the table gives it models in, which is not upstream's dyna one."""
        self.assertEqual(self.repositories("python"), held_by("python"))
        self.assertNotIn(DYNA, self.repositories("python"))

    def test_onnx_is_served_where_the_table_has_it(self):
        """onnx: every repository the table gives it models in, upstream's dyna one included."""
        self.assertEqual(self.repositories("onnx"), held_by("onnx"))
        self.assertIn(DYNA, self.repositories("onnx"))

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


def scalar(family, batched=True):
    """A scalar-state int32 model of the state-shape repository."""
    prefix = family if batched else f"{family}_nobatch"
    return ModelInfo(name=f"{prefix}_sequence_int32_state_scalar", dtype="int32", batched=batched,
                     family=family, initial_state="zero", repository="shape", state_dims=())


def arrays(model, values, dtype=np.int32):
    """OUTPUT arrays of `model` holding `values`, one per step."""
    shape = [1, 1] if model.batched else [1]
    return [np.full(shape, v, dtype=dtype) for v in values]


class ScalarJudgementTest(unittest.TestCase):
    """The scalar state's answers against the contract and the catalogued predictions."""

    WORKED = exp.coverage_steps("int32", "worked")
    RESTART = exp.coverage_steps("int32", "restart")
    ONNX_TEXT = "onnx runtime error 2: not enough space: expected 4, got 0"

    def setUp(self):
        tables = (report.KNOWN_BUGS, report.WRONG_ANSWERS)
        saved = [dict(t) for t in tables] + [list(report.OBSERVATIONS)]
        self.addCleanup(self.restore, tables, saved)
        self.case = checks.StateShapeTest("test_worked_sequence")

    @staticmethod
    def restore(tables, saved):
        for table, old in zip(tables, saved, strict=False):
            table.clear()
            table.update(old)
        report.OBSERVATIONS[:] = saved[-1]

    def judge(self, model, sent, answers):
        """(the outcomes observed, whether it failed) for one sequence's answers."""
        before = len(report.OBSERVATIONS)
        want = exp.coverage_outputs("int32", "worked" if sent is self.WORKED else "restart",
                                    "zero", ())
        try:
            self.case.judge(model, 1, sent, answers, want)
            failed = False
        except AssertionError:
            failed = True
        return [(o.entry, o.outcome) for o in report.OBSERVATIONS[before:]], failed

    def test_onnx_refusals_are_the_bug(self):
        """onnx: every request refused with the measured text: 3901 present, a known-bug model."""
        model = scalar("onnx")
        self.assertEqual(self.judge(model, self.WORKED, [self.ONNX_TEXT] * 4),
                         ([("3901", catalogue.PRESENT)], False))
        self.assertIn(("StateShapeTest", model.name), report.KNOWN_BUGS)
        self.assertEqual(self.judge(model, self.WORKED, arrays(model, (1, 3, 6, 10))),
                         ([("3901", catalogue.FIXED)], False))
        self.assertEqual(self.judge(model, self.WORKED, [self.ONNX_TEXT] * 3
                                    + arrays(model, (10,))), ([("3901", catalogue.WRONG)], True))

    def test_uninitialized_start_is_open(self):
        """savedmodel: START answers its value plus anything, later steps add exactly."""
        model = scalar("savedmodel", batched=False)
        garbage = arrays(model, (116, 118, 5 + 67109009, 14 + 67109009))
        self.assertEqual(self.judge(model, self.RESTART, garbage),
                         ([("3901", catalogue.PRESENT)], False))
        self.assertEqual(self.judge(model, self.RESTART, arrays(model, (1, 3, 5, 14))),
                         ([("3901", catalogue.FIXED)], False))
        drifting = arrays(model, (116, 119, 5, 14))
        self.assertEqual(self.judge(model, self.RESTART, drifting),
                         ([("3901", catalogue.WRONG)], True))
        wrong_type = arrays(model, (116, 118, 121, 125), dtype=np.int64)
        self.assertEqual(self.judge(model, self.WORKED, wrong_type),
                         ([("3901", catalogue.WRONG)], True))

    def test_pytorch_refuses_a_scalar_output(self):
        """A libtorch model without batching: the pytorch backend's own refusal, its own entry."""
        text = "output 'OUTPUT_STATE__1' is a scalar which is not supported."
        self.assertEqual(self.judge(scalar("libtorch", batched=False), self.WORKED, [text] * 4),
                         ([("pytorch-scalar-output", catalogue.PRESENT)], False))

    def test_python_must_answer_the_contract(self):
        """The python backend hands the model zeros: no prediction, the contract or a failure."""
        model = scalar("python")
        self.assertEqual(self.judge(model, self.WORKED, arrays(model, (1, 3, 6, 10))), ([], False))
        self.assertEqual(self.judge(model, self.WORKED, [self.ONNX_TEXT] * 4), ([], True))


class RoundGroupsTest(unittest.TestCase):
    """run_rounds puts each sequence on a stream of its own, a model's sequences in one group."""

    def test_groups_keep_models_whole(self):
        """Four sequences of each of three models on 10 streams: two groups, no model split."""
        keys = [(m, c) for m in ("a", "b", "c") for c in (1, 2, 3, 4)]
        self.assertEqual(client._groups(keys, 10), [keys[:8], keys[8:]])
        with self.assertRaisesRegex(ValueError, "more than the 3 streams"):
            client._groups(keys, 3)


SCALAR_CONFIG = """
name: "onnx_sequence_int32_state_scalar"
platform: "onnxruntime_onnx"
max_batch_size: 8
input { name: "INPUT" data_type: TYPE_INT32 dims: [1] }
output { name: "OUTPUT" data_type: TYPE_INT32 dims: [1] }
sequence_batching {
  state {
    input_name: "INPUT_STATE"
    output_name: "OUTPUT_STATE"
    data_type: TYPE_INT32
    initial_state { data_type: TYPE_INT32 zero_data: true name: "state init" }
  }
}
"""


class ServedConfigTest(unittest.TestCase):
    """How initial-state dims were served, read from a served configuration."""

    def test_empty_dims_tell_nothing(self):
        """A scalar state's initial dims are [] as numbers and as strings: no rendering to judge."""
        config = parse_config(SCALAR_CONFIG)
        self.assertEqual(served_config.compare(config, served_config.render(config, True)),
                         ([], None))
        config.sequence_batching.state[0].dims.append(1)
        config.sequence_batching.state[0].initial_state[0].dims.append(1)
        self.assertEqual(served_config.compare(config, served_config.render(config, True)),
                         ([], served_config.DIMS_AS_STRINGS))


class DeadServer:
    """A server whose process has ended while its socket still accepts and never answers."""

    def __init__(self, port):
        self.http_url = f"127.0.0.1:{port}"

    @staticmethod
    def running():
        """Never: the process is gone."""
        return False


class DyingLoadTest(unittest.TestCase):
    """A crash during a load is seen at once, not after the load call's timeout."""

    def test_a_hanging_load_on_a_dead_server_ends_at_once(self):
        """The load would hang LOAD_SECONDS; the dead process ends the wait within a second."""
        listener = socket.create_server(("127.0.0.1", 0))
        self.addCleanup(listener.close)
        case = catalogue_checks.InvalidModelsTest("test_each_model_alone")
        with mock.patch.object(catalogue_checks.InvalidModelsTest, "server",
                               DeadServer(listener.getsockname()[1]), create=True):
            started = time.monotonic()
            outcome = case._load_while_alive("onnx_data_file_missing")
        self.assertIs(outcome, catalogue_checks._DIED)
        self.assertLess(time.monotonic() - started, 5)


if __name__ == "__main__":
    unittest.main()
