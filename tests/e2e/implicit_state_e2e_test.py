"""End-to-end: verification's real-server checks as a Bazel test (`//tests:real_server_e2e_test`).

The checks themselves are product code, in verification/checks.py (the
contract, per repository and family) and verification/catalogue_checks.py
(the known-bug catalogue's reproducers); `bazel run //verification:verify`
runs the same ones on any Triton. This test runs them on the installation
the environment names (verification/served_repository.py `e2e_setup`),
prints the per-family table and the catalogue's verdicts, and exits 1 when
a check failed or a verdict is FAIL (E2E_EXPECT_FIXED names entries that
must be fixed).
"""

import signal
import sys
import unittest

from verification import checks
from verification.report import TableTestResult


def load_tests(loader, tests, pattern):
    """The checks that have something to run on this server (verification.checks.suite)."""
    del tests, pattern
    return checks.suite(loader)


def _interrupt(signum, frame):
    """Turn SIGTERM (a Bazel timeout) into KeyboardInterrupt, so servers stop."""
    del signum, frame
    raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _interrupt)
    program = unittest.main(testRunner=unittest.TextTestRunner(resultclass=TableTestResult),
                            exit=False)
    sys.exit(0 if program.result.wasSuccessful() and not program.result.catalogue_failed else 1)
