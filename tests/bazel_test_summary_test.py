"""tools/bazel_test_summary.py, the per-command result line CI prints at its end.

Runs the script as .ci/run does (by file path, in a subprocess) on
hand-written `bazel test` output: every status Bazel prints counts, FLAKY,
TIMEOUT and NO STATUS included, a status the script does not know keeps its
own name, and a target counts once per command.
"""

import os
import pathlib
import subprocess
import sys
import tempfile
import unittest

SCRIPT = "tools/bazel_test_summary.py"

LOG = """\
INFO: Analyzed 40 targets (0 packages loaded, 0 targets configured).
FAIL: //tests:b_test (see /tmp/b/test.log)
INFO: Build completed, 1 test FAILED, 12 total actions
//tests:a_test                                                           PASSED in 1.2s
//tests:c_test                                                  (cached) PASSED in 0.4s
//tests:b_test                                                           FAILED in 2.0s
  /tmp/b/test.log
//tests:d_test                                        FLAKY, failed in 1 out of 2 in 3.1s
//tests:e_test                                                        TIMEOUT in 300.0s
//tests:f_test                                                               NO STATUS
//tests:g_test                                                                 SKIPPED
//tests:h_test                                                         FAILED TO BUILD
//tests:i_test                                                      SOMETHING NEW in 1s

Executed 6 out of 9 tests: 2 tests pass, 1 fails locally, 1 is flaky.
"""


def run(title, *texts):
    """The script's output and exit status on logs holding `texts` (`--closing` as title: all)."""
    root = pathlib.Path(os.environ.get("TEST_SRCDIR", ".")) / os.environ.get("TEST_WORKSPACE", "")
    names = []
    for text in texts:
        with tempfile.NamedTemporaryFile("w", suffix=".log", delete=False) as log:
            log.write(text)
        names.append(log.name)
    try:
        done = subprocess.run(  # noqa: S603 - fixed argv
            [sys.executable, str(root / SCRIPT), title, *names],
            capture_output=True, text=True, check=False, timeout=60)
    finally:
        for name in names:
            os.unlink(name)
    return done.returncode, done.stdout.strip()


class SummaryTest(unittest.TestCase):
    """Nothing Bazel reports is dropped, nothing is counted twice."""

    def test_every_status_counts(self):
        """Each target under its status, in Bazel's order, an unknown status by its own name."""
        self.assertEqual(run("//...", LOG), (0, (
            "//...: 9 targets: 2 passed, 1 flaky, 1 failed, 1 timeout, 1 no status,"
            " 1 failed to build, 1 skipped, 1 something new")))

    def test_a_target_counts_once_per_command(self):
        """A target whose line appears twice in one command's output is one target."""
        text = "//tests:a_test   PASSED in 1s\n//tests:a_test   (cached) PASSED in 1s\n"
        self.assertEqual(run("e2e", text), (0, "e2e: 1 targets: 1 passed"))

    def test_no_targets(self):
        """A log without target lines says so."""
        self.assertEqual(run("e2e", "ERROR: Build did NOT complete successfully\n"),
                         (0, "e2e: 0 targets: none"))



class ClosingLineTest(unittest.TestCase):
    """The one line CI ends with: distinct targets over every command, worst status each."""

    def test_every_status_lands_in_one_count(self):
        """Flaky passed, skipped skipped, timeout, no status, unknown and build failures failed."""
        self.assertEqual(run("--closing", LOG), (0, "tests: 3 passed, 5 failed, 1 skipped"))

    def test_a_target_of_two_commands_counts_once_at_its_worst(self):
        """The e2e target run by both commands is one target; a failure in either fails it."""
        first = "//tests:e2e   PASSED in 1s\n//tests:unit   PASSED in 1s\n"
        second = "//tests:e2e   FAILED in 1s\n"
        self.assertEqual(run("--closing", first, second), (0, "tests: 1 passed, 1 failed, 0 skipped"))
        self.assertEqual(run("--closing", second, first), (0, "tests: 1 passed, 1 failed, 0 skipped"))

    def test_the_line_is_the_plain_closing_line(self):
        """`tests: N passed, N failed, N skipped`, alone on its line, as CI's reader expects."""
        code, out = run("--closing", LOG)
        self.assertRegex(out, r"^tests: \d+ passed, \d+ failed, \d+ skipped$")


if __name__ == "__main__":
    unittest.main()
