"""The per-family row of the real-server report and the rule that makes a family `ok`.

One place for both: verification.report prints each tested family's row with
`FamilyRow.line`, and CI reads the rows back from the test log with this
file run as a script (standard library only, so the host's python3 runs it):

    python3 verification/family_rows.py LOG FAMILY...

It exits 1, naming each family whose row is missing or not ok, or whose
printed verdict disagrees with its numbers. A family is ok only when it had
models, every one of them loaded, every one was sent at least one sequence,
and no problem was counted against it; models that answered exactly as a
known Triton bug predicts are counted, and do not fail it.
"""

import dataclasses
import pathlib
import re
import sys
from typing import Dict, List, Sequence

HEADER = (f"{'family':<12} {'backend':<12} {'models':>6} {'loaded':>6} {'checked':>7}"
          f" {'sequences':>9} {'known bug':>9} {'problems':>8}  result")
_ROW = re.compile(r"^(?P<family>\w+) +(?P<backend>\w+) +(?P<models>\d+) +(?P<loaded>\d+)"
                  r" +(?P<checked>\d+) +(?P<sequences>\d+) +(?P<known_bug>\d+)"
                  r" +(?P<problems>\d+)  (?P<result>.+)$")


@dataclasses.dataclass(frozen=True)
class FamilyRow:
    """What the real-server checks found for one tested family.

    Attributes:
        family: the model family.
        backend: its Triton backend folder.
        models: its models in the served repositories (loaded or not).
        loaded: how many of them loaded.
        checked: how many were sent at least one sequence.
        sequences: sequences sent to its models.
        known_bug: models whose answers matched a known Triton bug, with no problem.
        problems: failures counted against its models or its test classes.
    """

    family: str
    backend: str
    models: int = 0
    loaded: int = 0
    checked: int = 0
    sequences: int = 0
    known_bug: int = 0
    problems: int = 0

    def reasons(self) -> List[str]:
        """Why the family is not ok; empty when it is."""
        reasons = []
        if not self.models:
            reasons.append("no model served")
        if self.loaded < self.models:
            reasons.append(f"{self.models - self.loaded} not loaded")
        if self.checked < self.models:
            reasons.append(f"{self.models - self.checked} sent no sequence")
        if self.problems:
            reasons.append(f"{self.problems} problem(s)")
        return reasons

    def verdict(self) -> str:
        """The printed result: ok (naming any known-bug models) or FAIL (the reasons)."""
        reasons = self.reasons()
        if reasons:
            return f"FAIL ({', '.join(reasons)})"
        if self.known_bug:
            return f"ok ({self.known_bug} model(s) answer as a KNOWN TRITON BUG predicts)"
        return "ok"

    def line(self) -> str:
        """The row as the report prints it, under HEADER."""
        return (f"{self.family:<12} {self.backend:<12} {self.models:>6} {self.loaded:>6}"
                f" {self.checked:>7} {self.sequences:>9} {self.known_bug:>9} {self.problems:>8}"
                f"  {self.verdict()}")


def parse_rows(text: str) -> Dict[str, tuple]:
    """Every row line in `text` as family -> (FamilyRow, the verdict printed); the last wins."""
    rows = {}
    for line in text.splitlines():
        match = _ROW.match(line)
        if match:
            numbers = {k: int(v) for k, v in match.groupdict().items()
                       if k not in ("family", "backend", "result")}
            row = FamilyRow(match["family"], match["backend"], **numbers)
            rows[row.family] = (row, match["result"])
    return rows


def not_ok(text: str, families: Sequence[str]) -> List[str]:
    """One line per family of `families` that the log's table does not show ok."""
    rows = parse_rows(text)
    lines = []
    for family in families:
        if family not in rows:
            lines.append(f"{family}: no row of numbers in the per-family table (NOT TESTED?)")
            continue
        row, printed = rows[family]
        if printed != row.verdict():
            lines.append(f"{family}: printed {printed!r}, but its numbers give {row.verdict()!r}")
        elif row.reasons():
            lines.append(f"{family}: {row.verdict()}")
    return lines


def main(argv: Sequence[str]) -> int:
    """Check a test log's rows; 0 when every named family is ok, 1 otherwise, 2 on bad use."""
    if len(argv) < 2:
        sys.stderr.write("usage: family_rows.py LOG FAMILY...\n")
        return 2
    text = pathlib.Path(argv[0]).read_text(errors="replace")
    lines = not_ok(text, argv[1:])
    for line in lines:
        sys.stdout.write(f"family not ok: {line}\n")
    return 1 if lines else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
