"""Lines counting the per-target results of `bazel test` runs, for CI's closing summary.

    python3 tools/bazel_test_summary.py TITLE LOG
    python3 tools/bazel_test_summary.py --closing LOG [LOG...]

LOG is the output of one `bazel test` command. Every target line Bazel
prints at the end (`//pkg:name   (cached) PASSED in 1.2s`, `FLAKY, failed in
1 out of 2`, `TIMEOUT in ...`, `NO STATUS`, `FAILED TO BUILD`, `SKIPPED`,
...) is counted once per target under its status; a status this script does
not know is counted under its own name, never dropped. Prints
`TITLE: N targets: a passed, b flaky, ...`. One log per command: two commands
that run the same target are two lines, not one sum.

`--closing` prints the one line CI ends with, `tests: P passed, F failed, S
skipped`, over the distinct targets of every LOG: a target that several
commands ran counts once, under its worst status; PASSED and FLAKY (passed
on a retry, and named in the per-command line) are passed, SKIPPED is
skipped, every other status is failed. Standard library only.
"""

import collections
import pathlib
import re
import sys

# Bazel's statuses in the order the line names them; any other is appended.
KNOWN = ("PASSED", "FLAKY", "FAILED", "TIMEOUT", "NO STATUS", "INCOMPLETE", "FAILED TO BUILD",
         "REMOTE FAILURE", "SKIPPED")
_TARGET = re.compile(r"^(?P<label>(?:@[\w.~-]*)?//\S*)\s+(?:\(cached\) )?"
                     r"(?P<status>[A-Z]+(?: [A-Z]+)*)\b")


def statuses(text):
    """Each target line of a `bazel test` output as label -> status (a later line wins)."""
    found = {}
    for line in text.splitlines():
        match = _TARGET.match(line)
        if match:
            found[match["label"]] = match["status"]
    return found


def summary(title, text):
    """The summary line of one command's output."""
    counts = collections.Counter(statuses(text).values())
    order = [s for s in KNOWN if counts[s]] + sorted(set(counts) - set(KNOWN))
    parts = [f"{counts[s]} {s.lower()}" for s in order]
    total = sum(counts.values())
    return f"{title}: {total} targets: {', '.join(parts) or 'none'}"


_PASSED = ("PASSED", "FLAKY")


def _outcome(status):
    if status in _PASSED:
        return "passed"
    return "skipped" if status == "SKIPPED" else "failed"


def closing(texts):
    """CI's closing line over the distinct targets of several commands' outputs."""
    rank = {"passed": 0, "skipped": 1, "failed": 2}
    worst = {}
    for text in texts:
        for label, status in statuses(text).items():
            outcome = _outcome(status)
            if rank[outcome] >= rank[worst.get(label, "passed")]:
                worst[label] = outcome
    counts = collections.Counter(worst.values())
    return f"tests: {counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped"


def _read(path):
    return pathlib.Path(path).read_text(errors="replace")


def main(argv):
    """Print the summary line of LOG, or the closing line of LOGs; exit 2 on bad use."""
    if len(argv) >= 2 and argv[0] == "--closing":
        print(closing([_read(path) for path in argv[1:]]))
        return 0
    if len(argv) != 2 or argv[0].startswith("--"):
        sys.stderr.write("usage: bazel_test_summary.py TITLE LOG | --closing LOG [LOG...]\n")
        return 2
    print(summary(argv[0], _read(argv[1])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
