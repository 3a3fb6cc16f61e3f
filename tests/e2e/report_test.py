"""Unit tests of tests/e2e/report.py: the per-model verdicts and the closing table.

No server: a `ModelReport` result is fed hand-made test outcomes for models
of two families, one of which answered as a known Triton bug predicts.
"""

import io
import sys
import unittest

from tests.e2e import report
from tests.e2e.families import Discovery
from tests.e2e.sequence_client import ModelInfo

BUG = "states paired by name order (server issue 8586)"
ONNX_OK = ModelInfo(name="onnx_sequence_int32", dtype="int32", batched=True, family="onnx",
                    repository="r")
ONNX_BUG = ModelInfo(name="onnx_sequence_int32_states2", dtype="int32", batched=True,
                     family="onnx", repository="order")
PYTHON_BAD = ModelInfo(name="python_sequence_int32_states2", dtype="int32", batched=True,
                       family="python", repository="order")


class Result(report.ModelReport, unittest.TestResult):
    """The mixin over unittest's plain result, writing model lines to a buffer."""

    model_lines = True

    def __init__(self):
        super().__init__()
        self.stream = io.StringIO()


class Case(unittest.TestCase):
    """Stands for a served test class; its subtests name models."""

    def runTest(self):  # noqa: N802 - unittest's name
        """Unused: the outcomes are fed to the result by hand."""


class ReportTest(unittest.TestCase):
    """Known-bug models are counted apart from ok and from problems."""

    def setUp(self):
        saved = (dict(report.SERVED), dict(report.KNOWN_BUGS), report.WRONG_ANSWERS.copy())
        self.addCleanup(self._restore, saved)
        report.SERVED.clear()
        report.KNOWN_BUGS.clear()
        report.WRONG_ANSWERS.clear()
        report.SERVED["Case"] = [ONNX_OK, ONNX_BUG, PYTHON_BAD]
        report.KNOWN_BUGS[("Case", ONNX_BUG.name)] = BUG
        report.KNOWN_BUGS[("Case", PYTHON_BAD.name)] = BUG  # a bug answer, but also a failure
        self.result = Result()
        test = Case()
        self.result.startTest(test)
        try:
            raise AssertionError("python_sequence_int32_states2 step 1: got 14, want 15")
        except AssertionError:
            self.result.addSubTest(test, _Sub(test, PYTHON_BAD.name), sys.exc_info())
        self.result.stopTest(test)
        self.result.stopTestRun()
        self.discovery = Discovery("backends", False, ("onnx", "python"),
                                   {"plan": "needs a GPU"}, ())

    @staticmethod
    def _restore(saved):
        for target, value in zip((report.SERVED, report.KNOWN_BUGS), saved[:2], strict=True):
            target.clear()
            target.update(value)
        report.WRONG_ANSWERS.clear()
        report.WRONG_ANSWERS.update(saved[2])

    def test_model_lines(self):
        """Each model's verdict: ok, KNOWN TRITON BUG, or FAIL (a failure wins over a bug)."""
        lines = self.result.stream.getvalue().splitlines()
        self.assertEqual(lines, [
            "  [onnx] r/onnx_sequence_int32: 0 sequences, 0 problem(s): ok",
            f"  [onnx] order/onnx_sequence_int32_states2: 0 sequences, 0 problem(s):"
            f" KNOWN TRITON BUG: {BUG}",
            "  [python] order/python_sequence_int32_states2: 0 sequences, 1 problem(s): FAIL",
        ])

    def test_family_table(self):
        """onnx: 2 served, 1 known bug, ok; python: 1 problem, FAIL; plan not tested."""
        lines, failed = report.family_table(self.result, self.discovery)
        self.assertTrue(failed)
        self.assertRegex(lines[1], r"^onnx +onnxruntime +2 +0 +1 +0  ok \(1 model\(s\) answer as a"
                                   r" KNOWN TRITON BUG predicts\)$")
        self.assertRegex(lines[2], r"^python +python +1 +0 +0 +1  FAIL$")
        self.assertRegex(lines[3], r"^plan +tensorrt .* NOT TESTED: needs a GPU$")
        self.assertEqual(lines[4:], [f"  Case {ONNX_BUG.name}: KNOWN TRITON BUG: {BUG}"])

    def test_a_known_bug_alone_does_not_fail(self):
        """Without the python failure the run passes, the bug still counted."""
        result = Result()
        result.stopTestRun()
        report.SERVED["Case"] = [ONNX_OK, ONNX_BUG]
        lines, failed = report.family_table(result, Discovery("b", False, ("onnx",), {}, ()))
        self.assertFalse(failed, lines)

    def test_summary_line(self):
        """The machine-readable line tools/soak_e2e.py reads."""
        report.WRONG_ANSWERS["m"] += 2
        self.assertEqual(report.summary_line(self.result),
                         "e2e summary: tests=1 failures=1 errors=0 wrong_answers=2")


class _Sub:
    """A subtest as unittest hands it to addSubTest: its params name the model."""

    def __init__(self, test, model):
        self.test_case = test
        self.params = {"model": model}


if __name__ == "__main__":
    unittest.main()
