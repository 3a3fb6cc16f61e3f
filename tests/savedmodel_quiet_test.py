"""Building SavedModels prints no cuInit line where CUDA is absent, and hides no other error.

TensorFlow logs `failed call to cuInit ... UNKNOWN ERROR (303)` from C++
straight to file descriptor 2 the first time a process without a CUDA
driver lists its devices, and the builder runs once per model in a fresh
fork. generators/backends/savedmodel/quiet_device_init.py holds that line
back. Each way of building runs here in its own interpreter and its stderr
is read whole: the standalone CLI and the Python API (a fork per model),
the one-shot generator (a Bazel action) and its persistent worker. A
genuine TensorFlow error logged inside the filtered call and one logged
after it must both reach stderr. A control run with the driver check
answering "present" must print the line (on a machine without a driver),
so the absence checks cannot pass merely because TensorFlow stayed quiet.

Run: `python -m unittest tests.savedmodel_quiet_test` or as a script.
"""

import ctypes
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import unittest
from typing import Dict, List

from generators.backends.savedmodel.quiet_device_init import is_no_driver_cuinit_line
from generators.variant import Backend, DType, Variant

ROOT = pathlib.Path(__file__).resolve().parent.parent
CUINIT = "failed call to cuInit"
SAVED_MODEL = pathlib.Path("1") / "model.savedmodel" / "saved_model.pb"
VARIANT = Variant(backend=Backend.SAVEDMODEL, dtype=DType.INT32, shape=(1,), max_batch=8)
_GENERATOR = "generators.backends.savedmodel.savedmodel_generator"
# The CLI on a two-model matrix, then the Python API, into argv[1].
_CLI_AND_API = """
import pathlib, sys
from generators import api, gen_qa_implicit_models, matrix
out = pathlib.Path(sys.argv[1])
repo = {"name": "repo", "shape": [1], "max_batch": [8], "initial_state": "none",
        "strategy": "direct", "backends": ["savedmodel"], "dtypes": ["int32", "float32"]}
MATRIX = {"dtypes": [], "repositories": [repo]}
gen_qa_implicit_models.expand = lambda **selection: matrix.expand(MATRIX, **selection)
code = gen_qa_implicit_models.main(["--models_dir", str(out / "cli"), "--all", "--savedmodel"])
api.create_tf_modelfile(out / "api", 1, 8, "int32", [1])
sys.exit(code)
"""
# A genuine C++ error-level line inside the filtered device listing, another
# after the build (tf.print to log(error) is TensorFlow's own LOG(ERROR)).
_GENUINE_ERRORS = """
import pathlib, sys
import tensorflow as tf
from generators.backends.savedmodel import quiet_device_init, savedmodel_builder
from generators.build_options import BuildOptions
from generators.variant import Variant
listed = tf.config.list_physical_devices
def listing(*args):
    devices = listed(*args)
    tf.print("genuine error inside", output_stream=tf.compat.v1.logging.error)
    return devices
tf.config.list_physical_devices = listing
version_dir = pathlib.Path(sys.argv[1]) / "1"
version_dir.mkdir(parents=True)
savedmodel_builder.write_model(Variant.from_json(sys.argv[2]), BuildOptions(), version_dir)
tf.print("genuine error after", output_stream=tf.compat.v1.logging.error)
"""
# The builder with the driver check answering "present".
_DRIVER_REPORTED = """
import pathlib, sys
from generators.backends.savedmodel import quiet_device_init, savedmodel_builder
from generators.build_options import BuildOptions
from generators.variant import Variant
quiet_device_init.cuda_driver_present = lambda: True
version_dir = pathlib.Path(sys.argv[1]) / "1"
version_dir.mkdir(parents=True)
savedmodel_builder.write_model(Variant.from_json(sys.argv[2]), BuildOptions(), version_dir)
"""


def _driver_loads() -> bool:
    """This machine's own answer, independent of the module under test."""
    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    return True


def _python(args: List[str]) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # the test needs TensorFlow's error lines
    return subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _worker_requests(out: pathlib.Path, names: List[str]) -> bytes:
    """Bazel's JSON work requests, back to back without newlines as Bazel sends them."""
    return "".join(
        json.dumps({"arguments": ["--spec", VARIANT.to_json(), "--out", str(out / n)], "requestId": i})
        for i, n in enumerate(names, 1)).encode()


def _error_lines(stderr: str) -> List[str]:
    """Lines TensorFlow's C++ logging wrote at error level (severity letter E)."""
    return [line for line in stderr.splitlines() if line.startswith("E0")]


class QuietBuildTest(unittest.TestCase):
    """Every way of building is silent about cuInit; other errors still show."""

    @classmethod
    def setUpClass(cls) -> None:
        """Run every way at once, each in its own interpreter."""
        cls.out = pathlib.Path(tempfile.mkdtemp(prefix="savedmodel_quiet."))
        spec = VARIANT.to_json()
        processes = {
            "cli_and_api": _python(["-c", _CLI_AND_API, str(cls.out)]),
            "action": _python(["-m", _GENERATOR, "--spec", spec, "--out", str(cls.out / "action")]),
            "worker": _python(["-m", _GENERATOR, "--persistent_worker"]),
            "genuine": _python(["-c", _GENUINE_ERRORS, str(cls.out / "genuine"), spec]),
            "driver_reported": _python(["-c", _DRIVER_REPORTED, str(cls.out / "driver_reported"), spec]),
        }
        requests = {"worker": _worker_requests(cls.out, ["worker_1", "worker_2"])}
        cls.runs: Dict[str, subprocess.CompletedProcess] = {}
        for name, process in processes.items():
            stdout, stderr = process.communicate(requests.get(name, b""), timeout=300)
            cls.runs[name] = subprocess.CompletedProcess(
                process.args, process.returncode, stdout.decode(), stderr.decode())

    @classmethod
    def tearDownClass(cls) -> None:
        """Remove the built models."""
        shutil.rmtree(cls.out, ignore_errors=True)

    def _succeeded(self, name: str) -> subprocess.CompletedProcess:
        run = self.runs[name]
        self.assertEqual(run.returncode, 0, f"{name} failed:\n{run.stderr[-3000:]}")
        return run

    def test_cli_and_api_print_no_cuinit_line(self):
        """Three forked builds (two by the CLI, one by the API): no cuInit line, no error line."""
        run = self._succeeded("cli_and_api")
        self.assertNotIn(CUINIT, run.stderr)
        self.assertEqual(_error_lines(run.stderr), [])
        for model_dir in ("cli/repo/savedmodel_sequence_int32", "cli/repo/savedmodel_sequence_float32",
                          "api/savedmodel_sequence_int32"):
            self.assertTrue((self.out / model_dir / SAVED_MODEL).is_file(), model_dir)

    def test_bazel_action_prints_no_cuinit_line(self):
        """The one-shot generator, as a Bazel action runs it without a worker."""
        run = self._succeeded("action")
        self.assertNotIn(CUINIT, run.stderr)
        self.assertTrue((self.out / "action" / SAVED_MODEL).is_file())

    def test_worker_prints_no_cuinit_line(self):
        """The persistent worker, a fork per request."""
        run = self._succeeded("worker")
        self.assertNotIn(CUINIT, run.stderr)
        responses = [json.loads(line) for line in run.stdout.splitlines()]
        self.assertEqual([(r["requestId"], r["exitCode"]) for r in responses], [(1, 0), (2, 0)])

    def test_other_error_lines_still_show(self):
        """Errors logged inside the filtered call and after it reach stderr, in order."""
        run = self._succeeded("genuine")
        self.assertNotIn(CUINIT, run.stderr)
        messages = [line.partition("] ")[2] for line in _error_lines(run.stderr)]
        self.assertEqual(messages, ["genuine error inside", "genuine error after"])

    @unittest.skipIf(_driver_loads(), "a CUDA driver is installed: TensorFlow logs no 303 line")
    def test_line_shows_when_a_driver_is_reported(self):
        """The control: with the driver check saying "present", the line is printed once."""
        run = self._succeeded("driver_reported")
        self.assertEqual([CUINIT in line for line in _error_lines(run.stderr)], [True])


class LinePatternTest(unittest.TestCase):
    """Exactly the no-driver line is dropped."""

    def test_pattern(self):
        """TensorFlow 2.21's line matches; other codes, severities and messages do not."""
        line = ("E0000 00:00:1796567026.842231   10819 cuda_platform.cc:52] failed call to cuInit:"
                " INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)\n")
        self.assertTrue(is_no_driver_cuinit_line(line.encode()))
        for kept in (
            line.replace("UNKNOWN ERROR (303)", "CUDA_ERROR_NO_DEVICE: no CUDA-capable device is detected"),
            line.replace("(303)", "(999)"),
            "W" + line[1:],
            line.replace("failed call to cuInit", "failed call to cuDevicePrimaryCtxRetain"),
            "E0000 00:00:1796567229.432096   21326 logging_ops.cc:173] genuine error\n",
        ):
            self.assertFalse(is_no_driver_cuinit_line(kept.encode()), kept)


if __name__ == "__main__":
    unittest.main()
