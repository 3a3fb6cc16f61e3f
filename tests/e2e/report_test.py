"""Unit tests of verification/report.py: the per-model verdicts and the closing tables.

No server: a `ModelReport` result is fed hand-made test outcomes and
sequence counts for models of two families, one of which answered as a
known Triton bug predicts. A family is ok only when every model of it
loaded and was sent a sequence and nothing failed; the rows are read back
by verification/family_rows.py, the script CI runs on the test log, which must
reach the same verdict. `CatalogueVerdictTest`: what the checks recorded
turned into the catalogue's verdicts, with the reason an entry could not be
tested, and the invalid-model line.
"""

import contextlib
import io
import pathlib
import sys
import tempfile
import unittest

from verification import catalogue as catalogue_module
from verification import family_rows, report, sequence_client
from verification.families import Discovery
from verification.sequence_client import ModelInfo

BUG = "states paired by name order (server issue 8586)"
ONNX_OK = ModelInfo(name="onnx_sequence_int32", dtype="int32", batched=True, family="onnx",
                    repository="r")
ONNX_BUG = ModelInfo(name="onnx_sequence_int32_states2", dtype="int32", batched=True,
                     family="onnx", repository="order")
PYTHON_BAD = ModelInfo(name="python_sequence_int32_states2", dtype="int32", batched=True,
                       family="python", repository="order")
ONNX_UNLOADED = ModelInfo(name="onnx_sequence_float32", dtype="float32", batched=True,
                          family="onnx", repository="r")
ONLY_ONNX = Discovery("b", False, ("onnx",), {}, ())


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
        tables = (report.SERVED, report.KNOWN_BUGS, report.NOT_LOADED, report.WRONG_ANSWERS,
                  sequence_client.SEQUENCES_SENT)
        saved = [table.copy() for table in tables]
        self.addCleanup(self._restore, tables, saved)
        for table in tables:
            table.clear()
        report.SERVED["Case"] = [ONNX_OK, ONNX_BUG, PYTHON_BAD]
        report.KNOWN_BUGS[("Case", ONNX_BUG.name)] = BUG
        report.KNOWN_BUGS[("Case", PYTHON_BAD.name)] = BUG  # a bug answer, but also a failure
        self.result = self.run_case({ONNX_OK: 2, ONNX_BUG: 1, PYTHON_BAD: 1},
                                    model_failures=[PYTHON_BAD.name])
        self.discovery = Discovery("backends", False, ("onnx", "python"),
                                   {"plan": "needs a GPU"}, ())

    @staticmethod
    def run_case(sent, model_failures=(), family_failures=()):
        """A finished result of one class `Case`: `sent` model -> sequences, then failing subtests."""
        result = Result()
        test = Case()
        result.startTest(test)
        for model, count in sent.items():
            sequence_client.SEQUENCES_SENT[model.name] += count
        for key, value in [("model", m) for m in model_failures] + [
                ("family", f) for f in family_failures]:
            try:
                raise AssertionError(f"{value}: got 14, want 15")
            except AssertionError:
                result.addSubTest(test, _Sub(test, **{key: value}), sys.exc_info())
        result.stopTest(test)
        result.stopTestRun()
        return result

    @staticmethod
    def _restore(tables, saved):
        for table, value in zip(tables, saved, strict=True):
            table.clear()
            table.update(value)

    def test_model_lines(self):
        """Each model's verdict: ok, KNOWN TRITON BUG, or FAIL (a failure wins over a bug)."""
        lines = self.result.stream.getvalue().splitlines()
        self.assertEqual(lines, [
            "  [onnx] r/onnx_sequence_int32: 2 sequences, 0 problem(s): ok",
            f"  [onnx] order/onnx_sequence_int32_states2: 1 sequences, 0 problem(s):"
            f" KNOWN TRITON BUG: {BUG}",
            "  [python] order/python_sequence_int32_states2: 1 sequences, 1 problem(s): FAIL",
        ])

    def test_family_table(self):
        """onnx: 2 models, all loaded and checked, 1 known bug, ok; python: FAIL; plan not tested."""
        lines, failed = report.family_table(self.result, self.discovery)
        self.assertTrue(failed)
        self.assertEqual(lines[0].split(), ["family", "backend", "models", "loaded", "checked",
                                            "sequences", "known", "bug", "problems", "result"])
        self.assertRegex(lines[1], r"^onnx +onnxruntime +2 +2 +2 +3 +1 +0  ok \(1 model\(s\)"
                                   r" answer as a KNOWN TRITON BUG predicts\)$")
        self.assertRegex(lines[2], r"^python +python +1 +1 +1 +1 +0 +1  FAIL \(1 problem\(s\)\)$")
        self.assertRegex(lines[3], r"^plan +tensorrt .* NOT TESTED: needs a GPU$")
        self.assertEqual(lines[4:], [f"  Case {ONNX_BUG.name}: KNOWN TRITON BUG: {BUG}"])
        self.assertEqual(family_rows.not_ok("\n".join(lines), ["onnx"]), [])
        self.assertEqual(family_rows.not_ok("\n".join(lines), ["python", "plan"]), [
            "python: FAIL (1 problem(s))",
            "plan: no row of numbers in the per-family table (NOT TESTED?)"])

    def test_a_known_bug_alone_does_not_fail(self):
        """Without the python failure the run passes, the bug still counted."""
        report.SERVED["Case"] = [ONNX_OK, ONNX_BUG]
        result = self.run_case({ONNX_OK: 1, ONNX_BUG: 1})
        lines, failed = report.family_table(result, ONLY_ONNX)
        self.assertFalse(failed, lines)

    def test_a_model_that_did_not_load_fails_its_family(self):
        """A load failure counts in the row even with no problem recorded: not ok, nor in CI."""
        report.SERVED["Case"] = [ONNX_OK, ONNX_UNLOADED]
        report.NOT_LOADED[("Case", ONNX_UNLOADED.name)] = "failed to load"
        result = self.run_case({ONNX_OK: 3})
        self.assertEqual(result.stream.getvalue().splitlines()[1],
                         "  [onnx] r/onnx_sequence_float32: 0 sequences, 0 problem(s):"
                         " FAIL (did not load)")
        lines, failed = report.family_table(result, ONLY_ONNX)
        self.assertTrue(failed)
        self.assertRegex(lines[1], r"^onnx +onnxruntime +2 +1 +1 +3 +0 +0"
                                   r"  FAIL \(1 not loaded, 1 sent no sequence\)$")
        self.assertEqual(self.ci_check(lines, "onnx"),
                         (1, "family not ok: onnx: FAIL (1 not loaded, 1 sent no sequence)\n"))

    def test_a_model_sent_no_sequence_fails_its_family(self):
        """Every model must have been sent a sequence: nothing checked is not ok."""
        report.SERVED["Case"] = [ONNX_OK, ONNX_BUG]
        result = self.run_case({ONNX_OK: 1})
        lines, failed = report.family_table(result, ONLY_ONNX)
        self.assertTrue(failed)
        self.assertRegex(lines[1], r"^onnx +onnxruntime +2 +2 +1 +1 +1 +0"
                                   r"  FAIL \(1 sent no sequence\)$")

    def test_a_family_subtest_counts_for_that_family_only(self):
        """A failing subTest(family=...) (e.g. a wrong model count) fails that row, not others."""
        report.SERVED["Case"] = [ONNX_OK, PYTHON_BAD]
        result = self.run_case({ONNX_OK: 1, PYTHON_BAD: 1}, family_failures=["python"])
        lines, failed = report.family_table(result, Discovery("b", False, ("onnx", "python"), {}, ()))
        self.assertTrue(failed)
        self.assertRegex(lines[1], r"^onnx +onnxruntime +1 +1 +1 +1 +0 +0  ok$")
        self.assertRegex(lines[2], r"^python +python +1 +1 +1 +1 +1 +1  FAIL \(1 problem\(s\)\)$")

    def test_ci_rejects_a_row_whose_verdict_disagrees(self):
        """A row printed ok over numbers that are not (the old table's `0  ok`) fails CI's check."""
        ok = family_rows.FamilyRow("onnx", "onnxruntime", 2, 2, 2, 5).line()
        self.assertEqual(self.ci_check([ok], "onnx"), (0, ""))
        forged = family_rows.FamilyRow("onnx", "onnxruntime", 2, 1, 1, 5).line()
        forged = forged[:forged.index("  FAIL")] + "  ok"
        self.assertEqual(self.ci_check([forged], "onnx"), (1, (
            "family not ok: onnx: printed 'ok', but its numbers give"
            " 'FAIL (1 not loaded, 1 sent no sequence)'\n")))

    @staticmethod
    def ci_check(lines, *families):
        """family_rows.main on a log holding `lines`, as .ci/run runs it: (status, stdout)."""
        with tempfile.TemporaryDirectory() as scratch:
            log = pathlib.Path(scratch) / "test.log"
            log.write_text("\n".join(["real-server e2e, per family:", *lines, ""]))
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                status = family_rows.main([str(log), *families])
        return status, out.getvalue()

    def test_summary_line(self):
        """The machine-readable line tools/soak_e2e.py reads."""
        report.WRONG_ANSWERS["m"] += 2
        self.assertEqual(report.summary_line(self.result),
                         "e2e summary: tests=1 failures=1 errors=0 wrong_answers=2")


class _Sub:
    """A subtest as unittest hands it to addSubTest: its params name a model or a family."""

    def __init__(self, test, **params):
        self.test_case = test
        self.params = params



class CatalogueVerdictTest(unittest.TestCase):
    """report.catalogue_lines: observations, untestable reasons, the invalid-model line."""

    def setUp(self):
        tables = (report.OBSERVATIONS, report.UNTESTABLE, report.CHECKS_RUN, report.INVALID,
                  report.KNOWN_BUGS)
        saved = [table.copy() for table in tables]
        self.addCleanup(self._restore, tables, saved)
        for table in tables:
            table.clear()

    @staticmethod
    def _restore(tables, saved):
        for table, copy in zip(tables, saved, strict=True):
            table.clear()
            if isinstance(table, list):
                table.extend(copy)
            else:
                table.update(copy)

    def verdicts(self, discovery, expect=()):
        lines, failed = report.catalogue_lines(discovery, expect)
        found, _ = catalogue_module.parse("\n".join(lines))
        return found, failed, "\n".join(lines)

    def test_reasons(self):
        """No backend for the bug's families, a check that did not run, a check's own reason."""
        report.CHECKS_RUN.update({"served_config", "ragged_batch"})
        report.untestable("ragged-state-batch", "the batch could not be forced")
        python_only = Discovery("b", False, ("python",), {"onnx": "backend folder 'onnxruntime/'"
                                " absent from b (it holds: python)"}, ())
        found, failed, text = self.verdicts(python_only)
        self.assertFalse(failed)
        self.assertIn("no backend: it shows in onnx, libtorch, plan; this server tests python"
                      " (onnx: no onnxruntime/ folder)", text)
        self.assertIn("the batch could not be forced", text)
        self.assertIn("6538                       not testable here  initial_state.dims ignored"
                      " under a variable state: not run: its repository", text)
        self.assertIn("invalid models: not checked: no invalid-model repository given", text)
        self.assertEqual(found["6538"], "not testable here")

    def test_present_marks_the_model_and_expect_fixed_fails(self):
        """A present observation with its class marks the model; --expect-fixed fails the run."""
        report.observe("6538", ONNX_OK, "present", test_class="Case")
        self.assertEqual(report.KNOWN_BUGS[("Case", ONNX_OK.name)],
                         "initial_state.dims ignored under a variable state (6538)")
        found, failed, _ = self.verdicts(ONLY_ONNX)
        self.assertEqual((found["6538"], failed), ("present", False))
        found, failed, _ = self.verdicts(ONLY_ONNX, expect=("6538",))
        self.assertEqual((found["6538"], failed), ("FAIL", True))

    def test_invalid_problems_fail(self):
        """A problem among the invalid models fails the run and shows on its line."""
        report.INVALID.update(models=2, refused=1, problems=1)
        _, failed, text = self.verdicts(ONLY_ONNX)
        self.assertTrue(failed)
        self.assertIn("invalid models: models=2 refused=1 catalogued=0 crashed=0 problems=1", text)


if __name__ == "__main__":
    unittest.main()
