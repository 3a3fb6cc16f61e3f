"""The known-bug catalogue (`catalogue.json`), its verdicts, and the table the checks print.

`load` reads the one catalogue into frozen `Entry` records (a missing or
unknown key is an error naming it). The checks record an `Observation` per
answer a catalogued bug could change: `present` (exactly the bug's
prediction), `fixed` (the contract's answer) or `wrong` (neither); a check
that could not observe an entry records why (`untestable`). `verdicts`
turns them into one `Verdict` per entry:

- FAIL when an answer was neither (a new failure), or when the entry is in
  `expect_fixed` (verify's `--expect-fixed`) and is present or could not be
  tested;
- present when any answer was the bug's prediction, fixed when every one was
  the contract's;
- not testable here, with the reason (no model, no backend for a family the
  bug shows in, its check did not run), otherwise.

`table` renders them; CI reads the rendered table back with this file run as
a script (standard library only, so the host's python3 runs it):

    python3 verification/catalogue.py LOG [--present ID,...] [--invalid-checked]

which exits 1 when a verdict is FAIL, when a line disagrees with its
counts, when an entry named by `--present` is not present, or (with
`--invalid-checked`) when the invalid-model repository's line is missing or
counts a problem.
"""

import argparse
import dataclasses
import json
import pathlib
import re
import sys
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

CATALOGUE_PATH = pathlib.Path(__file__).resolve().with_name("catalogue.json")
KINDS = ("bug", "behaviour")
# Checks that observe entries (verification/checks.py, catalogue_checks.py).
CHECKS = ("", "name_order", "ragged_batch", "initial_state_dims", "served_config",
          "invalid_models", "scalar_state")
PRESENT, FIXED, WRONG = "present", "fixed", "wrong"
OUTCOMES = (PRESENT, FIXED, WRONG)
NOT_TESTABLE, FAIL = "not testable here", "FAIL"
TABLE_TITLE = "known Triton bugs and behaviours (verification/catalogue.json):"
SUMMARY = re.compile(r"^catalogue summary: present=(\d+) fixed=(\d+) not_testable=(\d+)"
                     r" failed=(\d+)$")
INVALID = re.compile(r"^invalid models: models=(\d+) refused=(\d+) catalogued=(\d+)"
                     r" crashed=(\d+) problems=(\d+)$")
_LINE = re.compile(r"^  (?P<id>\S+) +(?P<verdict>present|fixed|not testable here|FAIL)  (?P<rest>.*)$")


class CatalogueError(ValueError):
    """The catalogue file, or a name given for it, is not what the rules say."""

    def __init__(self, message: str) -> None:
        super().__init__(message)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Entry:
    """One known bug or behaviour of Triton's implicit state (see catalogue.json's comment)."""

    id: str
    kind: str
    title: str
    upstream: str
    where: str
    families: Tuple[str, ...]
    reproducer: str
    check: str
    rule: str
    buggy: str
    fixed: str
    exact: str
    simulated: bool
    not_testable: str
    defects: Tuple[str, ...]

    def __post_init__(self) -> None:
        """Closed sets and the rules tying the fields together."""
        if self.kind not in KINDS or self.check not in CHECKS:
            raise CatalogueError(f"entry {self.id}: kind {self.kind!r} / check {self.check!r};"
                                 f" kinds are {KINDS}, checks {CHECKS}")
        if bool(self.check) == bool(self.not_testable):
            raise CatalogueError(f"entry {self.id}: give a check or a not_testable reason, not"
                                 f" both and not neither (check={self.check!r})")
        if self.defects and self.check != "invalid_models":
            raise CatalogueError(f"entry {self.id}: defects {list(self.defects)} go with check"
                                 " 'invalid_models' only")

    @property
    def fixable(self) -> bool:
        """Whether the simulation can run this entry fixed (a simulated bug, not a behaviour)."""
        return self.kind == "bug" and self.simulated


def load(path: pathlib.Path = CATALOGUE_PATH) -> Dict[str, Entry]:
    """Every entry by id, in file order."""
    data = json.loads(path.read_text())
    fields = {f.name for f in dataclasses.fields(Entry)}
    entries = {}
    for raw in data["entries"]:
        unknown, missing = sorted(set(raw) - fields), sorted(fields - set(raw))
        if unknown or missing:
            raise CatalogueError(f"catalogue entry {raw.get('id')!r}: unknown keys {unknown},"
                                 f" missing keys {missing}")
        entry = Entry(**{**raw, "families": tuple(raw["families"]),
                         "defects": tuple(raw["defects"])})
        if entry.id in entries:
            raise CatalogueError(f"catalogue entry {entry.id!r} is listed twice")
        entries[entry.id] = entry
    return entries


def parse_ids(text: str, entries: Mapping[str, Entry]) -> Tuple[str, ...]:
    """Comma-separated entry ids (`--expect-fixed 8586,6538`); an unknown one is an error."""
    ids = tuple(i for i in (part.strip() for part in (text or "").split(",")) if i)
    unknown = [i for i in ids if i not in entries]
    if unknown:
        raise CatalogueError(f"unknown catalogue ids {unknown}; the catalogue"
                             f" (verification/catalogue.json) has: {', '.join(entries)}")
    return ids


@dataclasses.dataclass(frozen=True)
class Observation:
    """One answer a catalogued bug could change, judged against its prediction and the contract."""

    entry: str
    family: str
    model: str
    outcome: str
    detail: str = ""

    def __post_init__(self) -> None:
        """The outcome is one of OUTCOMES."""
        if self.outcome not in OUTCOMES:
            raise CatalogueError(f"observation outcome {self.outcome!r}; use one of {OUTCOMES}")


@dataclasses.dataclass(frozen=True)
class Verdict:
    """The verdict on one entry for the server under test."""

    entry: Entry
    verdict: str
    detail: str

    def line(self) -> str:
        """The table line (parsed back by `parse`)."""
        return f"  {self.entry.id:<26} {self.verdict}  {self.entry.title}: {self.detail}"


def _models_by_family(observations: Sequence[Observation], outcome: str) -> str:
    families: Dict[str, set] = {}
    for obs in observations:
        families.setdefault(obs.family, set())
        if obs.outcome == outcome:
            families[obs.family].add(obs.model)
    total = {f: len({o.model for o in observations if o.family == f}) for f in families}
    return ", ".join(f"{f} {len(models)}/{total[f]} models" for f, models in sorted(families.items())
                     if models)


def verdict(entry: Entry, observations: Sequence[Observation], untestable: Iterable[str],
            expect_fixed: bool) -> Verdict:
    """The verdict on one entry from its observations (see the module docstring)."""
    wrong = [o for o in observations if o.outcome == WRONG]
    if wrong:
        return Verdict(entry, FAIL, f"{len(wrong)} answer(s) neither the contract's nor the bug's"
                                    f" prediction, e.g. {wrong[0].model}: {wrong[0].detail}")
    if any(o.outcome == PRESENT for o in observations):
        where = f"as predicted in {_models_by_family(observations, PRESENT)}"
        fixed_too = _models_by_family(observations, FIXED)
        where += f"; the contract's answer in {fixed_too}" if fixed_too else ""
        if expect_fixed:
            return Verdict(entry, FAIL, f"expected fixed (--expect-fixed), but present: {where}")
        return Verdict(entry, PRESENT, where)
    if observations:
        return Verdict(entry, FIXED, f"the contract's answer in {_models_by_family(observations, FIXED)}")
    reasons = sorted(set(untestable)) or [entry.not_testable or "its check did not run"]
    reason = "; ".join(reasons)
    if expect_fixed:
        return Verdict(entry, FAIL, f"expected fixed (--expect-fixed), but not testable here: {reason}")
    return Verdict(entry, NOT_TESTABLE, reason)


def verdicts(entries: Mapping[str, Entry], observations: Iterable[Observation],
             untestable: Mapping[str, Iterable[str]],
             expect_fixed: Iterable[str] = ()) -> List[Verdict]:
    """One verdict per entry, in catalogue order."""
    observations = list(observations)
    unknown = sorted({o.entry for o in observations} - set(entries))
    if unknown:
        raise CatalogueError(f"observations name entries {unknown} the catalogue does not have")
    expect_fixed = set(expect_fixed)
    return [verdict(entry, [o for o in observations if o.entry == entry.id],
                    untestable.get(entry.id, ()), entry.id in expect_fixed)
            for entry in entries.values()]


def table(results: Sequence[Verdict]) -> List[str]:
    """The printed table: a title, one line per entry, one summary line."""
    counts = {v: sum(r.verdict == v for r in results) for v in (PRESENT, FIXED, NOT_TESTABLE, FAIL)}
    return ([TABLE_TITLE] + [r.line() for r in results]
            + [f"catalogue summary: present={counts[PRESENT]} fixed={counts[FIXED]}"
               f" not_testable={counts[NOT_TESTABLE]} failed={counts[FAIL]}"])


def failed(results: Sequence[Verdict]) -> bool:
    """Whether any verdict fails the run."""
    return any(r.verdict == FAIL for r in results)


def parse(text: str) -> Tuple[Dict[str, str], Optional[Tuple[int, ...]]]:
    """The last table in `text`: entry id -> verdict, and the summary's counts (None: absent)."""
    found: Dict[str, str] = {}
    summary = None
    for line in text.splitlines():
        if line == TABLE_TITLE:
            found, summary = {}, None
        elif (match := _LINE.match(line)) is not None:
            found[match["id"]] = match["verdict"]
        elif (match := SUMMARY.match(line)) is not None:
            summary = tuple(int(n) for n in match.groups())
    return found, summary


def check_log(text: str, present: Sequence[str], invalid_checked: bool = False) -> List[str]:
    """Why a log's table does not pass: FAIL verdicts, bad counts, expected-present entries not present.

    With `invalid_checked`, also the invalid-model line: present, with
    every model refused or catalogued and no problem.
    """
    found, summary = parse(text)
    if not found or summary is None:
        return ["no catalogue table (title, entry lines, summary) in the log"]
    counts = tuple(sum(v == name for v in found.values())
                   for name in (PRESENT, FIXED, NOT_TESTABLE, FAIL))
    problems = [f"{i}: FAIL" for i, v in found.items() if v == FAIL]
    if counts != summary:
        problems.append(f"summary counts {summary} disagree with the lines' {counts}")
    problems += [f"{i}: expected present, the table says {found.get(i, 'nothing')}"
                 for i in present if found.get(i) != PRESENT]
    if invalid_checked:
        counts = [tuple(int(n) for n in m.groups()) for m in map(INVALID.match, text.splitlines())
                  if m is not None]
        if not counts:
            problems.append("no 'invalid models:' line with counts in the log")
        else:
            models, refused, catalogued, crashed, bad = counts[-1]
            if bad or refused + catalogued + crashed != models:
                problems.append(f"invalid models: {bad or models - refused - catalogued - crashed}"
                                " problem(s)")
    return problems


def main(argv: Sequence[str]) -> int:
    """Check a test log's catalogue table; 0 when it passes, 1 otherwise, 2 on bad use."""
    parser = argparse.ArgumentParser(description="Check the catalogue table of a test log.")
    parser.add_argument("log", type=pathlib.Path)
    parser.add_argument("--present", default="", help="comma-separated ids that must be present")
    parser.add_argument("--invalid-checked", action="store_true",
                        help="the invalid-model repository must have been checked, no problem")
    args = parser.parse_args(argv)
    try:
        present = parse_ids(args.present, load())
    except CatalogueError as err:
        sys.stderr.write(f"{err}\n")
        return 2
    problems = check_log(args.log.read_text(errors="replace"), present, args.invalid_checked)
    for problem in problems:
        sys.stdout.write(f"catalogue: {problem}\n")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
