"""The verify entry point in a subprocess as a user runs it: family table, catalogue verdicts, exit status.

- A folder holding only `python/` (the pinned wheel's python backend, as
  verification.triton_server assembles it) plus an unknown `foo/`: python is
  tested as today (one repository, to keep the run short), onnx, savedmodel
  and plan are reported NOT TESTED with their reasons, `foo/` is reported
  UNKNOWN, and the exit status is 0.
- A folder holding only `foo/`: no family can be tested, which is a failure
  (exit 1) and starts no server.
- Against a fake tritonserver (tests/fake_tritonserver.py: Triton's HTTP
  and gRPC protocols over verification/triton_sim.py) serving the onnx
  models of the order and initial-state dims repositories, one verdict
  each: released Triton -> 8586, 6538 and config-initial-state-dims
  `present`, exit 0; every bug fixed -> `fixed`, exit 0 also with
  `--expect-fixed 8586,6538`; a model answering off by one -> 6538 FAIL (a
  new failure), exit 1; released with `--expect-fixed 8586` -> 8586 FAIL,
  exit 1; an unknown id -> exit 2.
"""

import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import unittest

from verification import catalogue, real_backends
from verification.triton_server import python_backend_directory

REPOSITORY = "qa_sequence_initial_state_file_implicit_model_repository"
ORDER = "qa_multi_state_order_implicit_model_repository"
DIMS = "qa_initial_state_dims_implicit_model_repository"
ROOT = pathlib.Path(os.environ.get("TEST_SRCDIR", ".")) / os.environ.get("TEST_WORKSPACE", "")
ALL_FIXED = "8586,6538,ragged-state-batch,config-initial-state-dims"


def run_verify(*args, repo=None, extra_env=None):
    """Run `python -m verification.verify` from the runfiles root; returns (status, output)."""
    root = ROOT
    env = dict(os.environ, PYTHONNOUSERSITE="1", **(extra_env or {}))
    # The test lays out its own backend folder: the caller's installation
    # variables (--test_env) must not choose another server for it.
    for variable in ("E2E_FAMILIES", real_backends.REAL_BACKENDS_VAR,
                     *real_backends.INSTALLATION_VARS):
        env.pop(variable, None)
    done = subprocess.run(  # noqa: S603 - fixed argv
        [sys.executable, "-s", "-m", "verification.verify", "--repo",
         repo or os.environ["IMPLICIT_REPO"], *args],
        cwd=root, env=env, capture_output=True, text=True, timeout=600, check=False)
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



class VerdictTest(unittest.TestCase):
    """verify against a fake tritonserver, released, fixed and broken: one verdict each."""

    def setUp(self):
        """A backend folder with onnxruntime/ only, and the fake server's launcher."""
        self.scratch = pathlib.Path(tempfile.mkdtemp(prefix="verify_verdicts."))
        self.addCleanup(shutil.rmtree, self.scratch, ignore_errors=True)
        (self.scratch / "backends" / "onnxruntime").mkdir(parents=True)
        self.server = self.scratch / "tritonserver"
        self.server.write_text(f'#!/bin/sh\nPYTHONPATH="{ROOT}" exec "{sys.executable}" -s'
                               ' -m tests.fake_tritonserver "$@"\n')
        self.server.chmod(0o755)

    def verify(self, *args, fixed="", wrong=""):
        """Verify on the order and dims repositories' onnx models; (status, verdicts, output)."""
        status, output = run_verify(
            "--triton-server", str(self.server), "--backend-dir", str(self.scratch / "backends"),
            "--repository", ORDER, "--repository", DIMS, *args,
            repo=os.environ["IMPLICIT_ONNX_REPO"],
            extra_env={"FAKE_TRITON_FIXED": fixed, "FAKE_TRITON_WRONG": wrong})
        sys.stderr.write(output)
        return status, catalogue.parse(output)[0], output

    def test_released_triton_is_present(self):
        """The bugs as released: present, as predicted, and the run passes."""
        status, verdicts, output = self.verify()
        self.assertEqual(status, 0, output)
        for entry in ("8586", "6538", "config-initial-state-dims"):
            self.assertEqual(verdicts[entry], catalogue.PRESENT, entry)
        self.assertIn("as predicted in onnx 8/8 models", output)
        self.assertEqual(verdicts["3901"], catalogue.NOT_TESTABLE)
        self.assertRegex(output, r"\n  ragged-state-batch +not testable here  .*not run")
        self.assertIn("verify: PASSED", output)

    def test_fixed_triton_is_fixed(self):
        """Every simulated bug fixed: fixed, and --expect-fixed passes."""
        status, verdicts, output = self.verify("--expect-fixed", "8586,6538", fixed=ALL_FIXED)
        self.assertEqual(status, 0, output)
        for entry in ("8586", "6538", "config-initial-state-dims"):
            self.assertEqual(verdicts[entry], catalogue.FIXED, entry)
        self.assertIn("verify: PASSED", output)

    def test_new_failure_fails(self):
        """An answer that is neither the contract's nor the bug's: FAIL, exit 1."""
        status, verdicts, output = self.verify(wrong="onnx_sequence_int32")
        self.assertEqual(status, 1, output)
        self.assertEqual(verdicts["6538"], catalogue.FAIL)
        self.assertEqual(verdicts["8586"], catalogue.PRESENT)
        self.assertIn("neither the contract's nor the bug's prediction", output)
        self.assertIn("verify: FAILED", output)

    def test_expect_fixed_turns_present_into_failure(self):
        """--expect-fixed 8586 on released Triton: 8586 FAIL, exit 1; 6538 still present."""
        status, verdicts, output = self.verify("--expect-fixed", "8586")
        self.assertEqual(status, 1, output)
        self.assertEqual(verdicts["8586"], catalogue.FAIL)
        self.assertEqual(verdicts["6538"], catalogue.PRESENT)
        self.assertIn("expected fixed (--expect-fixed), but present", output)

    def test_unknown_id_is_a_usage_error(self):
        """An id the catalogue lacks: exit 2 naming the known ones, no server started."""
        status, _, output = self.verify("--expect-fixed", "12345")
        self.assertEqual(status, 2, output)
        self.assertIn("unknown catalogue ids ['12345']", output)


if __name__ == "__main__":
    unittest.main()
