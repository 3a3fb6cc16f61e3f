"""The verify entry point on backend folders assembled here, in a subprocess as a user runs it.

- A folder holding only `python/` (the pinned wheel's python backend, as
  tests.e2e.triton_server assembles it) plus an unknown `foo/`: python is
  tested as today (one repository, to keep the run short), onnx, savedmodel
  and plan are reported NOT TESTED with their reasons, `foo/` is reported
  UNKNOWN, and the exit status is 0.
- A folder holding only `foo/`: no family can be tested, which is a failure
  (exit 1) and starts no server.
"""

import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import unittest

from tests.e2e import real_backends
from tests.e2e.triton_server import python_backend_directory

REPOSITORY = "qa_sequence_initial_state_file_implicit_model_repository"


def run_verify(*args):
    """Run `python -m tests.e2e.verify` from the runfiles root; returns (status, output)."""
    root = pathlib.Path(os.environ.get("TEST_SRCDIR", ".")) / os.environ.get("TEST_WORKSPACE", "")
    env = dict(os.environ, PYTHONNOUSERSITE="1")
    # The test lays out its own backend folder: the caller's installation
    # variables (--test_env) must not choose another server for it.
    for variable in ("E2E_FAMILIES", real_backends.REAL_BACKENDS_VAR,
                     *real_backends.INSTALLATION_VARS):
        env.pop(variable, None)
    done = subprocess.run(  # noqa: S603 - fixed argv
        [sys.executable, "-s", "-m", "tests.e2e.verify", "--repo", os.environ["IMPLICIT_REPO"],
         *args], cwd=root, env=env, capture_output=True, text=True, timeout=600, check=False)
    return done.returncode, done.stdout + done.stderr


class VerifyTest(unittest.TestCase):
    """The closing table says what was tested, what not and why."""

    def setUp(self):
        self.scratch = pathlib.Path(tempfile.mkdtemp(prefix="verify_test."))
        self.addCleanup(shutil.rmtree, self.scratch, ignore_errors=True)

    def test_python_only_folder_with_unknown_backend(self):
        """python/ + foo/: python verified, the others NOT TESTED with reasons, foo/ UNKNOWN."""
        backends = python_backend_directory(self.scratch / "backends")
        (backends / "foo").mkdir()
        status, output = run_verify("--backend-dir", str(backends), "--repository", REPOSITORY)
        sys.stderr.write(output)
        self.assertEqual(status, 0, output)
        self.assertIn("families tested: python\n", output)
        self.assertRegex(output, rf"\n  \[python\] {REPOSITORY}/python_sequence_int32:"
                                 r" \d+ sequences, 0 problem\(s\): ok\n")
        # 8 models, all 8 loaded and sent sequences, no known bug, no problem.
        self.assertRegex(output, r"\npython +python +8 +8 +8 +[1-9]\d* +0 +0  ok\n")
        for fam, folder in (("onnx", "onnxruntime"), ("savedmodel", "tensorflow")):
            self.assertRegex(output, rf"\n{fam} +{folder} .*NOT TESTED: backend folder '{folder}/' absent")
        self.assertRegex(output, r"\nplan +tensorrt .*NOT TESTED: ")
        self.assertRegex(output, r"\n\? +foo .*UNKNOWN backend folder")
        self.assertIn("verify: PASSED", output)

    def test_no_known_backend_fails(self):
        """foo/ alone: nothing can be verified, which is a failure."""
        (self.scratch / "foo").mkdir()
        status, output = run_verify("--backend-dir", str(self.scratch))
        self.assertEqual(status, 1, output)
        self.assertIn("families tested: none", output)
        self.assertIn("verify: FAILED", output)


if __name__ == "__main__":
    unittest.main()
