"""Unit tests of verification/catalogue.py: the catalogue file's rules, the verdicts, CI's reading.

The verdict rules (module docstring of verification/catalogue.py) on
hand-made observations: present, fixed, not testable with its reason, FAIL
for an answer that is neither, and `--expect-fixed` turning present (or not
testable) into FAIL. The printed table is parsed back the way CI reads it,
and a table whose verdict or counts were tampered with is refused.
"""

import json
import pathlib
import shutil
import tempfile
import unittest

from verification import catalogue
from verification.catalogue import FIXED, PRESENT, WRONG, Observation

ENTRIES = catalogue.load()
# The entries the issue names, and the checks that observe them.
EXPECTED_CHECKS = {
    "8586": "name_order", "ragged-state-batch": "ragged_batch", "6538": "initial_state_dims",
    "config-initial-state-dims": "served_config", "3901": "scalar_state",
    "pytorch-scalar-output": "scalar_state", "string-state-zeroed": "",
    "ort-state-dtype": "invalid_models", "ort-state-names": "invalid_models",
    "refused-load-crash": "invalid_models",
}
FAMILIES = {"onnx", "savedmodel", "python", "libtorch", "plan"}


def obs(entry, outcome, family="onnx", model="m"):
    """One observation."""
    return Observation(entry, family, model, outcome, "detail")


def verdicts(observations, expect_fixed=(), untestable=None):
    """Entry id -> (verdict, detail) for hand-made observations."""
    results = catalogue.verdicts(ENTRIES, observations, untestable or {}, expect_fixed)
    return {r.entry.id: (r.verdict, r.detail) for r in results}


class CatalogueFileTest(unittest.TestCase):
    """catalogue.json as the rules of Entry have it."""

    def test_entries_and_checks(self):
        """Every entry the issue names, each with its check (or why it has none)."""
        self.assertEqual({i: e.check for i, e in ENTRIES.items()}, EXPECTED_CHECKS)
        for entry in ENTRIES.values():
            with self.subTest(entry=entry.id):
                self.assertLessEqual(set(entry.families), FAMILIES)
                self.assertTrue(entry.upstream and entry.rule and entry.buggy and entry.fixed)
                self.assertEqual(entry.check == "", bool(entry.not_testable))

    def test_rules_refuse_bad_entries(self):
        """Unknown or missing keys, a check with a reason, defects without the check, twice."""
        good = json.loads(catalogue.CATALOGUE_PATH.read_text())["entries"][0]
        bad = {
            "unknown keys \\['colour'\\]": [dict(good, colour="red")],
            "missing keys \\['rule'\\]": [{k: v for k, v in good.items() if k != "rule"}],
            "give a check or a not_testable reason": [dict(good, not_testable="why")],
            "defects .* go with check 'invalid_models' only": [dict(good, defects=["state_dtype"])],
            "kinds are": [dict(good, kind="feature")],
            "listed twice": [good, good],
        }
        folder = pathlib.Path(tempfile.mkdtemp(prefix="catalogue_test."))
        self.addCleanup(shutil.rmtree, folder, ignore_errors=True)
        for message, entries in bad.items():
            with self.subTest(message=message):
                path = folder / "catalogue.json"
                path.write_text(json.dumps({"entries": entries}))
                with self.assertRaisesRegex(catalogue.CatalogueError, message):
                    catalogue.load(path)

    def test_parse_ids(self):
        """Comma-separated ids; an unknown one is an error listing the catalogue's."""
        self.assertEqual(catalogue.parse_ids("8586, 6538", ENTRIES), ("8586", "6538"))
        self.assertEqual(catalogue.parse_ids("", ENTRIES), ())
        with self.assertRaisesRegex(catalogue.CatalogueError, "unknown catalogue ids \\['42'\\].*8586"):
            catalogue.parse_ids("8586,42", ENTRIES)


class VerdictTest(unittest.TestCase):
    """One verdict per entry from what the checks saw."""

    def test_present(self):
        """A prediction matched: present, naming the families and models."""
        got = verdicts([obs("8586", PRESENT, "onnx", "a"), obs("8586", PRESENT, "libtorch", "b"),
                        obs("8586", FIXED, "libtorch", "c")])
        self.assertEqual(got["8586"][0], PRESENT)
        self.assertIn("libtorch 1/2 models, onnx 1/1 models", got["8586"][1])

    def test_fixed(self):
        """Every answer the contract's: fixed."""
        self.assertEqual(verdicts([obs("6538", FIXED), obs("6538", FIXED, model="n")])["6538"][0],
                         FIXED)

    def test_new_failure(self):
        """One answer neither the contract's nor the prediction: FAIL, whatever else was seen."""
        verdict, detail = verdicts([obs("6538", PRESENT), obs("6538", WRONG, model="x")])["6538"]
        self.assertEqual(verdict, catalogue.FAIL)
        self.assertIn("x: detail", detail)

    def test_not_testable_with_reason(self):
        """No observation: the check's reason, else the entry's own."""
        got = verdicts([], untestable={"ragged-state-batch": {"the batch did not form"}})
        self.assertEqual(got["ragged-state-batch"], (catalogue.NOT_TESTABLE, "the batch did not form"))
        self.assertEqual(got["string-state-zeroed"],
                         (catalogue.NOT_TESTABLE, ENTRIES["string-state-zeroed"].not_testable))
        self.assertEqual(got["3901"], (catalogue.NOT_TESTABLE, "its check did not run"))

    def test_expect_fixed(self):
        """--expect-fixed: present fails, not testable fails, fixed passes."""
        got = verdicts([obs("8586", PRESENT), obs("6538", FIXED)],
                       expect_fixed=("8586", "6538", "3901"))
        self.assertEqual(got["8586"][0], catalogue.FAIL)
        self.assertIn("expected fixed (--expect-fixed), but present", got["8586"][1])
        self.assertEqual(got["6538"][0], FIXED)
        self.assertEqual(got["3901"][0], catalogue.FAIL)
        self.assertIn("but not testable here", got["3901"][1])

    def test_unknown_entry_refused(self):
        """An observation of an entry the catalogue lacks is a bug of the checks."""
        with self.assertRaisesRegex(catalogue.CatalogueError, "\\['nope'\\]"):
            verdicts([obs("nope", PRESENT)])

    def test_bad_outcome_refused(self):
        """Observations hold one of the three outcomes."""
        with self.assertRaisesRegex(catalogue.CatalogueError, "outcome 'maybe'"):
            obs("8586", "maybe")


class TableTest(unittest.TestCase):
    """The printed table and CI's reading of it (`python3 verification/catalogue.py LOG`)."""

    def log(self, observations, expect_fixed=()):
        """The table as a test log holds it, among other lines."""
        results = catalogue.verdicts(ENTRIES, observations, {}, expect_fixed)
        return "noise\n" + "\n".join(catalogue.table(results)) + "\ne2e summary: tests=1\n"

    def test_round_trip(self):
        """What is printed is what is read back, counts included."""
        text = self.log([obs("8586", PRESENT), obs("6538", FIXED)])
        found, summary = catalogue.parse(text)
        self.assertEqual(found["8586"], PRESENT)
        self.assertEqual(found["6538"], FIXED)
        self.assertEqual(summary, (1, 1, 8, 0))
        self.assertEqual(catalogue.check_log(text, ["8586"]), [])

    def test_fail_and_missing_present_are_refused(self):
        """A FAIL verdict, or an entry CI wants present that is not, fails the reading."""
        text = self.log([obs("8586", PRESENT), obs("6538", WRONG)])
        self.assertEqual(catalogue.check_log(text, ["8586"]), ["6538: FAIL"])
        self.assertEqual(catalogue.check_log(self.log([]), ["8586"]),
                         ["8586: expected present, the table says not testable here"])

    def test_tampered_table_is_refused(self):
        """A verdict edited without its summary, or no table at all, fails the reading."""
        text = self.log([obs("8586", PRESENT)]).replace("  8586                       present",
                                                        "  8586                       fixed  ")
        self.assertIn("summary counts (1, 0, 9, 0) disagree with the lines' (0, 1, 9, 0)",
                      catalogue.check_log(text, []))
        self.assertEqual(catalogue.check_log("no table here", []),
                         ["no catalogue table (title, entry lines, summary) in the log"])

    def test_invalid_line(self):
        """--invalid-checked: the invalid-model line must be there with no problem."""
        text = self.log([])
        self.assertEqual(catalogue.check_log(text, [], invalid_checked=True),
                         ["no 'invalid models:' line with counts in the log"])
        ok = text + "invalid models: models=25 refused=21 catalogued=3 crashed=1 problems=0\n"
        self.assertEqual(catalogue.check_log(ok, [], invalid_checked=True), [])
        bad = text + "invalid models: models=25 refused=21 catalogued=3 crashed=0 problems=1\n"
        self.assertEqual(catalogue.check_log(bad, [], invalid_checked=True),
                         ["invalid models: 1 problem(s)"])
        uncounted = text + "invalid models: models=25 refused=21 catalogued=3 crashed=0 problems=0\n"
        self.assertEqual(catalogue.check_log(uncounted, [], invalid_checked=True),
                         ["invalid models: 1 problem(s)"])


if __name__ == "__main__":
    unittest.main()
