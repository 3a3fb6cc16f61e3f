"""What the real-server checks found, per model, per family and per catalogued bug: the closing tables.

`ModelReport` is a `unittest` result mixin: it counts problems per model
(a failing subTest names its model), per family (a failing subTest names
its family) and per test class (set-up, clean-up, the server-log check),
the sequences each model was sent (verification.sequence_client.SEQUENCES_SENT)
and the models a check found answering exactly as a known Triton bug
predicts (`KNOWN_BUGS`, filled by the checks). Every model a class tried to
load is in `SERVED`, the ones that failed also in `NOT_LOADED`.
`family_table` turns that into one row per family (verification.family_rows:
models, loaded, checked, sequences, known-bug models, problems and the
verdict, ok only when every model loaded and was sent a sequence and
nothing failed), then the families not tested and why, and backend folders
no family uses. Both `bazel test //tests:real_server_e2e_test` (at the end
of its output) and `bazel run //verification:verify` print it.

The checks also record what they saw of each entry of the known-bug
catalogue (`observe`, `untestable`, `CHECKS_RUN`; verification/catalogue.py);
`catalogue_verdicts` turns that into one verdict per entry, with the reason
when an entry could not be tested (no backend for a family it shows in, its
check did not run), and `invalid_line` summarises the invalid-model
repository (`INVALID`, filled by verification/catalogue_checks.py).
"""

import collections
import dataclasses
import functools
import os
import re
import unittest

from verification import catalogue, sequence_client
from verification.families import FAMILIES
from verification.family_rows import HEADER, FamilyRow

# Test class name -> the models it tried to load (filled by verification.served_repository).
SERVED = {}
# (test class, model name) -> why the model did not load.
NOT_LOADED = {}
# (test class, model name) -> the known Triton bug its answers matched exactly.
KNOWN_BUGS = {}
# model name -> answers that were not the contract's (a wrong value or a failed request).
WRONG_ANSWERS = collections.Counter()
# Catalogue observations (verification.catalogue.Observation), in the order made.
OBSERVATIONS = []
# catalogue entry id -> why a check that ran could not observe it.
UNTESTABLE = collections.defaultdict(set)
# The catalogue checks (catalogue.CHECKS) that ran.
CHECKS_RUN = set()
# The invalid-model repository's counts: models, refused, catalogued (loads as a catalogued bug
# predicts), crashed (killed the server at every attempt: the catalogued crash), problems.
INVALID = collections.Counter()
INVALID_NOT_CHECKED = ("no invalid-model repository given (verify --invalid-repo DIR; Bazel"
                       " builds //models:invalid_repo)")
# Entries that must be fixed in the server under test (verify's --expect-fixed).
EXPECT_FIXED_VAR = "E2E_EXPECT_FIXED"
# The invalid-model repository (verify's --invalid-repo; Bazel: //models:invalid_repo).
INVALID_REPO_VAR = "IMPLICIT_INVALID_REPO"
_LEFT_OUT = "not run: this selection (--repository, --family) left its check out"
_NOT_RUN = {
    "name_order": "not run: its repository, qa_multi_state_order_implicit_model_repository, was not served",
    "initial_state_dims": "not run: its repository, qa_initial_state_dims_implicit_model_repository,"
                          " was not served",
    "ragged_batch": "not run: its source repository,"
                    " qa_variable_sequence_initial_state_file_implicit_model_repository, was not asked for",
    "served_config": "not run: no repository was served",
    "scalar_state": "not run: its repository, qa_state_shape_implicit_model_repository, was not"
                    " served",
    "invalid_models": f"not run: {INVALID_NOT_CHECKED}",
}
_CLASS = re.compile(r"\((?:[\w.]+\.)?(\w+)\)")


@functools.cache
def entries():
    """The catalogue, read once."""
    return catalogue.load()


def observe(entry_id, model, outcome, detail="", test_class=None):
    """Record what a model's answer says of a catalogue entry.

    A `present` answer with `test_class` also marks the model as answering
    as a known Triton bug predicts (its line and its family row say so).
    """
    entry = entries()[entry_id]
    OBSERVATIONS.append(catalogue.Observation(entry.id, model.family, model.name, outcome, detail))
    if outcome == catalogue.PRESENT and test_class:
        KNOWN_BUGS[(test_class, model.name)] = f"{entry.title} ({entry.id})"


def untestable(entry_id, reason):
    """Record why a check that ran could not observe an entry."""
    UNTESTABLE[entries()[entry_id].id].add(reason)


def expect_fixed(environ=os.environ):
    """The entry ids E2E_EXPECT_FIXED names (verify's --expect-fixed sets it)."""
    return catalogue.parse_ids(environ.get(EXPECT_FIXED_VAR, ""), entries())


def _reason(entry, discovery):
    shows = [f for f in entry.families if f in discovery.tested]
    if not shows:
        why = ", ".join(f"{f}: {_short(f, discovery.not_tested[f])}" for f in entry.families
                        if f in discovery.not_tested)
        return (f"no backend: it shows in {', '.join(entry.families)}; this server tests"
                f" {', '.join(discovery.tested) or 'no family'}" + (f" ({why})" if why else ""))
    if entry.check not in CHECKS_RUN:
        if entry.check == "invalid_models" and os.environ.get(INVALID_REPO_VAR):
            return _LEFT_OUT
        return _NOT_RUN[entry.check]
    return f"no model of {', '.join(shows)} reached its check"


def _short(family, why):
    """A family's NOT TESTED reason in a few words (the family table has it in full)."""
    if why.startswith("backend folder"):
        return f"no {FAMILIES[family].backend}/ folder"
    return "no GPU" if "GPU" in why else why.split(" (")[0]


def catalogue_verdicts(discovery, expect=()):
    """One verdict per catalogue entry from what the checks recorded."""
    reasons = {k: set(v) for k, v in UNTESTABLE.items()}
    observed = {o.entry for o in OBSERVATIONS}
    for entry in entries().values():
        if not entry.not_testable and entry.id not in observed and not reasons.get(entry.id):
            reasons[entry.id] = {_reason(entry, discovery)}
    return catalogue.verdicts(entries(), OBSERVATIONS, reasons, expect)


def invalid_line():
    """The invalid-model repository's summary line (read by verification/catalogue.py)."""
    if not INVALID:
        why = _LEFT_OUT[len("not run: "):] if os.environ.get(INVALID_REPO_VAR) else INVALID_NOT_CHECKED
        return f"invalid models: not checked: {why}"
    return (f"invalid models: models={INVALID['models']} refused={INVALID['refused']}"
            f" catalogued={INVALID['catalogued']} crashed={INVALID['crashed']}"
            f" problems={INVALID['problems']}")


def catalogue_lines(discovery, expect=()):
    """The catalogue table and the invalid-model line; and whether a verdict fails the run."""
    results = catalogue_verdicts(discovery, expect)
    return catalogue.table(results) + [invalid_line()], (catalogue.failed(results)
                                                         or INVALID["problems"] > 0)


class ModelReport:
    """Problems per model and per class; mixed in before a `unittest.TestResult` class.

    With `model_lines`, each class's models are written to `self.stream` as
    the class finishes.
    """

    model_lines = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.model_problems = collections.Counter()  # (class, model) -> count
        self.family_problems = collections.Counter()  # (class, family) -> count
        self.class_problems = collections.Counter()  # class -> count outside a model
        self.messages = []
        self.sequences = {}  # (class, model) -> sequences sent
        self._current = None
        self._counts_before = collections.Counter()

    def _flush(self):
        name, self._current = self._current, None
        for model in SERVED.get(name, []) if name else []:
            sent = sequence_client.SEQUENCES_SENT[model.name] - self._counts_before[model.name]
            self.sequences[(name, model)] = sent
            if self.model_lines:
                self.stream.write(self.model_line(name, model, sent))
        if self.model_lines:
            self.stream.flush()

    def model_line(self, name, model, sent):
        """One model's line: its sequences, problems and any known Triton bug.

        ok only as the family rule has it: loaded, sent a sequence, no problem.
        """
        problems = self.model_problems[(name, model.name)]
        bug = KNOWN_BUGS.get((name, model.name))
        if (name, model.name) in NOT_LOADED:
            verdict = "FAIL (did not load)"
        elif problems:
            verdict = "FAIL"
        elif not sent:
            verdict = "FAIL (sent no sequence)"
        else:
            verdict = f"KNOWN TRITON BUG: {bug}" if bug else "ok"
        return (f"  [{model.family}] {model.repository}/{model.name}: {sent} sequences,"
                f" {problems} problem(s): {verdict}\n")

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

    def _record(self, test, err, model=None, family=None):
        name = type(test).__name__
        if isinstance(test, unittest.suite._ErrorHolder):  # setUpClass / class cleanup
            match = _CLASS.search(test.description)
            name = match.group(1) if match else test.description
        if model:
            self.model_problems[(name, model)] += 1
        elif family:
            self.family_problems[(name, family)] += 1
        else:
            self.class_problems[name] += 1
        text = self._exc_info_to_string(err, test).strip().splitlines()
        self.messages.append(f"{name} {model or family or test}: {text[-1] if text else ''}")

    def addError(self, test, err):  # noqa: N802 - unittest's name
        super().addError(test, err)
        self._record(test, err)

    def addFailure(self, test, err):  # noqa: N802 - unittest's name
        super().addFailure(test, err)
        self._record(test, err)

    def addSubTest(self, test, subtest, err):  # noqa: N802 - unittest's name
        super().addSubTest(test, subtest, err)
        if err is not None and not issubclass(err[0], unittest.SkipTest):
            self._record(test, err, subtest.params.get("model"), subtest.params.get("family"))


def _family_rows(result, discovery):
    """A FamilyRow per tested family and per family a class served; and the unattributed problems."""
    rows = {f: FamilyRow(f, FAMILIES[f].backend) for f in discovery.tested}

    def add(fam, **counts):
        row = rows.get(fam) or FamilyRow(fam, FAMILIES[fam].backend)
        rows[fam] = dataclasses.replace(
            row, **{k: getattr(row, k) + v for k, v in counts.items()})

    for name, models in SERVED.items():
        for model in models:
            sent = result.sequences.get((name, model), 0)
            problems = result.model_problems[(name, model.name)]
            add(model.family, models=1, loaded=int((name, model.name) not in NOT_LOADED),
                checked=int(sent > 0), sequences=sent, problems=problems,
                known_bug=int((name, model.name) in KNOWN_BUGS and not problems))
    for (_, fam), count in result.family_problems.items():
        add(fam, problems=count)
    unattributed = 0
    for name, count in result.class_problems.items():
        families = {m.family for m in SERVED.get(name, [])}
        for fam in families:
            add(fam, problems=count)
        unattributed += 0 if families else count
    return rows, unattributed


def family_table(result, discovery):
    """The closing table's lines and whether any problem was found.

    Args:
        result: a finished `ModelReport` result.
        discovery: the verification.families.Discovery the run tested.
    """
    rows, unattributed = _family_rows(result, discovery)
    lines = [HEADER] + [row.line() for _, row in sorted(rows.items())]
    dashes = " ".join(f"{'-':>{width}}" for width in (6, 6, 7, 9, 9, 8))
    for fam, why in discovery.not_tested.items():
        lines.append(f"{fam:<12} {FAMILIES[fam].backend:<12} {dashes}  NOT TESTED: {why}")
    for folder in discovery.unknown:
        lines.append(f"{'?':<12} {folder:<12} {dashes}  UNKNOWN backend folder: no family of"
                     " this project is served by it; not verified")
    if unattributed:
        lines.append(f"{'(suite)':<12} {'':<12} {unattributed:>50}  FAIL")
    for (name, model_name), bug in sorted(KNOWN_BUGS.items()):
        if not result.model_problems[(name, model_name)]:
            lines.append(f"  {name} {model_name}: KNOWN TRITON BUG: {bug}")
    failed = (not result.wasSuccessful() or not rows or unattributed > 0
              or any(row.reasons() for row in rows.values()))
    return lines, failed


class TableTestResult(ModelReport, unittest.TextTestResult):
    """unittest's text result that ends with the family table (the e2e test's output)."""

    catalogue_failed = False

    def stopTestRun(self):  # noqa: N802 - unittest's name
        super().stopTestRun()
        if SERVED:
            from verification.served_repository import e2e_setup  # it imports this module

            discovery = e2e_setup().discovery
            lines, _ = family_table(self, discovery)
            self.stream.write("\nreal-server e2e, per family:\n" + "\n".join(lines) + "\n")
            lines, self.catalogue_failed = catalogue_lines(discovery, expect_fixed())
            self.stream.write("\n" + "\n".join(lines) + "\n")
        self.stream.write(summary_line(self) + "\n")
        self.stream.flush()


def summary_line(result):
    """One machine-readable line (read by tools/soak_e2e.py): tests, failures, wrong answers."""
    return (f"e2e summary: tests={result.testsRun} failures={len(result.failures)}"
            f" errors={len(result.errors)} wrong_answers={sum(WRONG_ANSWERS.values())}")
