"""Tests of the standalone CLI and the per-model generator entry point.

Covers upstream's flags writing into a shared --models_dir (only the
generated models are added or replaced), `--onnx_opset=0`, the flags
upstream accepts and ignores, `--torch-aoti`, the dyna script, both scripts
run by file path from another directory, clear errors with exit status 2
(ONNX versions the pinned onnx does not know included), no partial model on
failure, byte-identical reruns, and the Bazel worker protocol of
generate_model.
"""

import contextlib
import io
import json
import os
import pathlib
import struct
import subprocess
import sys
import tempfile
import unittest
from unittest import mock

from generators import build_options, gen_qa_implicit_models, generate_model
from generators.backends.onnx import onnx_builder
from generators.backends.plan import plan_builder
from generators.errors import BackendUnavailableError
from generators.manifest import file_digests
from generators.model_config import parse_config
from generators.variant import Backend

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent


def run_cli(*argv):
    """Run the CLI in-process; returns (exit status, stderr text)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            code = gen_qa_implicit_models.main(list(argv))
        except SystemExit as exit_:  # argparse errors
            code = exit_.code
    return code, err.getvalue()


class UpstreamFlagsTest(unittest.TestCase):
    """Upstream's invocations, several runs into one directory."""

    def setUp(self):
        self.dir = pathlib.Path(tempfile.mkdtemp())
        self.addCleanup(subprocess.run, ["rm", "-rf", str(self.dir)])

    def test_onnx_fixed_repository(self):
        code, err = run_cli("--models_dir", str(self.dir), "--onnx")
        self.assertEqual(code, 0, err)
        names = sorted(p.name for p in self.dir.iterdir())
        self.assertEqual(names, sorted(
            f"onnx_{b}sequence_{d}" for b in ("", "nobatch_")
            for d in ("float32", "int32", "object", "bool")))
        self.assertEqual(err.count("onnx_"), 8, "one progress line per model")

    def test_rerun_replaces_only_generated_models(self):
        foreign = self.dir / "someone_elses_model"
        foreign.mkdir()
        (foreign / "config.pbtxt").write_text('name: "someone_elses_model"\n')
        self.assertEqual(run_cli("--models_dir", str(self.dir), "--onnx")[0], 0)
        self.assertEqual(
            run_cli("--models_dir", str(self.dir), "--onnx", "--initial-state", "zero")[0], 0)
        config = parse_config((self.dir / "onnx_sequence_int32" / "config.pbtxt").read_text())
        self.assertTrue(config.sequence_batching.state[0].initial_state[0].zero_data)
        self.assertEqual((foreign / "config.pbtxt").read_text(), 'name: "someone_elses_model"\n')
        self.assertEqual([p.name for p in self.dir.iterdir() if p.name.startswith(".")], [])

    def test_dyna_flag(self):
        self.assertEqual(run_cli("--models_dir", str(self.dir), "--onnx", "--dyna")[0], 0)
        self.assertEqual(sorted(p.name for p in self.dir.iterdir()),
                         ["onnx_dyna_sequence_int32", "onnx_nobatch_dyna_sequence_int32"])

    def test_multi_state_flag(self):
        self.assertEqual(run_cli("--models_dir", str(self.dir), "--onnx", "--multi-state")[0], 0)
        self.assertEqual(sorted(p.name for p in self.dir.iterdir()), sorted(
            f"onnx_{b}sequence_{d}_states{n}" for b in ("", "nobatch_")
            for d in ("float32", "int32") for n in (2, 3)))

    def test_multi_state_order_flag(self):
        """The order repository's models: every pair renamed, output names rotated."""
        self.assertEqual(
            run_cli("--models_dir", str(self.dir), "--onnx", "--multi-state-order")[0], 0)
        self.assertEqual(sorted(p.name for p in self.dir.iterdir()), sorted(
            f"onnx_{b}sequence_{d}_states{n}" for b in ("", "nobatch_")
            for d in ("float32", "int32") for n in (2, 3)))
        config = parse_config((self.dir / "onnx_sequence_int32_states2" / "config.pbtxt")
                              .read_text())
        self.assertEqual([(s.input_name, s.output_name) for s in config.sequence_batching.state],
                         [("INPUT_STATE_A", "OUTPUT_STATE_B"), ("INPUT_STATE_B", "OUTPUT_STATE_A")])

    def test_initial_state_dims_flag(self):
        """The 6538 reproducer: variable int32 models whose file holds 100, 200, 300 in dims [3]."""
        self.assertEqual(
            run_cli("--models_dir", str(self.dir), "--onnx", "--initial-state-dims")[0], 0)
        self.assertEqual(sorted(p.name for p in self.dir.iterdir()), ["onnx_sequence_int32"])
        model = self.dir / "onnx_sequence_int32"
        state = parse_config((model / "config.pbtxt").read_text()).sequence_batching.state[0]
        self.assertEqual((list(state.dims), list(state.initial_state[0].dims)), ([-1], [3]))
        self.assertEqual((model / "initial_state" / "input_state_data").read_bytes(),
                         struct.pack("<3i", 100, 200, 300))

    def test_onnx_opset_flag(self):
        self.assertEqual(run_cli("--models_dir", str(self.dir), "--onnx", "--onnx_opset", "13")[0], 0)
        model = onnx_builder.onnx.load(str(self.dir / "onnx_sequence_int32" / "1" / "model.onnx"))
        self.assertEqual(model.opset_import[0].version, 13)

    def test_triton_24_10_maximum_versions(self):
        """IR 10 / opset 21, the most Triton 24.10's ONNX Runtime 1.19 loads, are written."""
        code, err = run_cli("--models_dir", str(self.dir), "--onnx", "--onnx_opset", "21",
                            "--onnx_ir_version", "10")
        self.assertEqual(code, 0, err)
        model = onnx_builder.onnx.load(str(self.dir / "onnx_sequence_int32" / "1" / "model.onnx"))
        self.assertEqual((model.ir_version, model.opset_import[0].version), (10, 21))

    def test_onnx_opset_zero_is_the_generators_choice(self):
        """Upstream's pipeline passes --onnx_opset=0: the default opset and IR, same bytes."""
        chosen, default = self.dir / "chosen", self.dir / "default"
        self.assertEqual(run_cli("--models_dir", str(chosen), "--onnx", "--onnx_opset=0")[0], 0)
        self.assertEqual(run_cli("--models_dir", str(default), "--onnx")[0], 0)
        model = onnx_builder.onnx.load(str(chosen / "onnx_sequence_int32" / "1" / "model.onnx"))
        self.assertEqual((model.ir_version, model.opset_import[0].version), (8, 17))
        self.assertEqual(file_digests(chosen), file_digests(default))
        self.assertEqual(build_options.BuildOptions(onnx_opset=0), build_options.BuildOptions())

    def test_flags_upstream_ignores(self):
        """Accepted with one note each; the models are those of the same run without them."""
        noted, plain = self.dir / "noted", self.dir / "plain"
        code, err = run_cli("--models_dir", str(noted), "--onnx", "--graphdef",
                            "--tensorrt-shape-io", "--openvino", "--ensemble")
        self.assertEqual(code, 0, err)
        for flag in ("--graphdef", "--tensorrt-shape-io", "--openvino", "--ensemble"):
            self.assertEqual(err.count(f"note: {flag} has no effect"), 1, err)
        self.assertEqual(run_cli("--models_dir", str(plain), "--onnx")[0], 0)
        self.assertEqual(file_digests(noted), file_digests(plain))

    def test_only_flags_upstream_ignores(self):
        """As upstream: nothing to do is not an error; nothing is created."""
        out = self.dir / "out"
        code, err = run_cli("--models_dir", str(out), "--openvino")
        self.assertEqual(code, 0, err)
        self.assertIn("nothing to generate", err)
        self.assertFalse(out.exists())

    def test_default_versions_pass_the_check(self):
        """BuildOptions skips the onnx lookup for the defaults, so prove them valid here."""
        build_options.check_onnx_versions(build_options.DEFAULT_ONNX_OPSET,
                                          build_options.DEFAULT_ONNX_IR_VERSION)
        self.assertEqual((build_options.DEFAULT_ONNX_OPSET,
                          build_options.DEFAULT_ONNX_IR_VERSION), (17, 8))


class DynaScriptTest(unittest.TestCase):
    """gen_qa_dyna_sequence_implicit_models.py: upstream's dyna flags, --dyna's models."""

    def setUp(self):
        self.dir = pathlib.Path(tempfile.mkdtemp())
        self.addCleanup(subprocess.run, ["rm", "-rf", str(self.dir)])

    def dyna(self, *argv):
        with mock.patch.object(sys, "argv", ["gen_qa_dyna_sequence_implicit_models.py"]):
            err = io.StringIO()
            with contextlib.redirect_stderr(err):
                try:
                    code = gen_qa_implicit_models.main(list(argv), script=gen_qa_implicit_models.DYNA)
                except SystemExit as exit_:
                    code = exit_.code
        return code, err.getvalue()

    def test_writes_what_dyna_flag_writes(self):
        script, flag = self.dir / "script", self.dir / "flag"
        code, err = self.dyna("--onnx", "--onnx_opset=0", f"--models_dir={script}")
        self.assertEqual(code, 0, err)
        self.assertEqual(run_cli("--models_dir", str(flag), "--onnx", "--dyna")[0], 0)
        self.assertEqual(sorted(p.name for p in script.iterdir()),
                         ["onnx_dyna_sequence_int32", "onnx_nobatch_dyna_sequence_int32"])
        self.assertEqual(file_digests(script), file_digests(flag))

    def test_flags_upstreams_dyna_script_ignores(self):
        code, err = self.dyna("--onnx", "--libtorch", "--savedmodel", f"--models_dir={self.dir}")
        self.assertEqual(code, 0, err)
        self.assertIn("note: --libtorch has no effect: upstream's"
                      " gen_qa_dyna_sequence_implicit_models.py accepts it", err)
        self.assertIn("note: --savedmodel has no effect", err)
        self.assertEqual(len(list(self.dir.iterdir())), 2)

    def test_flags_it_does_not_take(self):
        out = self.dir / "out"
        for flags, message in (
                (("--onnx", "--variable"), "--variable with the dyna models"),
                (("--onnx", "--initial-state", "zero"),
                 "unknown argument(s) --initial-state zero: neither upstream's"
                 " gen_qa_dyna_sequence_implicit_models.py"),
                (("--python",), "unknown argument(s) --python"),
                ((), "no backend selected; pass one or more of --onnx, --tensorrt")):
            with self.subTest(flags=flags):
                code, err = self.dyna(*flags, f"--models_dir={out}")
                self.assertEqual(code, 2, err)
                self.assertIn(message, err)
                self.assertFalse(out.exists())


class RunByPathTest(unittest.TestCase):
    """The scripts run by file path from elsewhere, with no PYTHONPATH (upstream's SRCDIR)."""

    def run_script(self, script, *argv):
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        return subprocess.run([sys.executable, str(script), *argv], cwd=tempfile.gettempdir(),
                              env=env, capture_output=True, text=True, check=False)

    def test_from_another_directory(self):
        out = pathlib.Path(tempfile.mkdtemp())
        self.addCleanup(subprocess.run, ["rm", "-rf", str(out)])
        for script, flags, names in (
                ("gen_qa_implicit_models.py", ["--onnx", "--variable"], 4),
                ("gen_qa_dyna_sequence_implicit_models.py", ["--onnx"], 2)):
            with self.subTest(script=script):
                target = out / script
                result = self.run_script(REPO_ROOT / "generators" / script, *flags,
                                         "--onnx_opset=0", f"--models_dir={target}")
                self.assertEqual(result.returncode, 0, result.stderr)
                self.assertEqual(len(list(target.iterdir())), names)

    def test_a_symlink_elsewhere(self):
        """As upstream's pipeline copies scripts into SRCDIR, a user may link them there."""
        srcdir = pathlib.Path(tempfile.mkdtemp())
        self.addCleanup(subprocess.run, ["rm", "-rf", str(srcdir)])
        link = srcdir / "gen_qa_dyna_sequence_implicit_models.py"
        link.symlink_to(REPO_ROOT / "generators" / link.name)
        result = self.run_script(link, "--onnx", f"--models_dir={srcdir / 'out'}")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(len(list((srcdir / "out").iterdir())), 2)

    def test_a_copy_says_so(self):
        folder = pathlib.Path(tempfile.mkdtemp())
        self.addCleanup(subprocess.run, ["rm", "-rf", str(folder)])
        copy = folder / "gen_qa_implicit_models.py"
        copy.write_bytes((REPO_ROOT / "generators" / "gen_qa_implicit_models.py").read_bytes())
        result = self.run_script(copy, "--onnx", f"--models_dir={folder / 'out'}")
        self.assertEqual(result.returncode, 1)
        self.assertIn("has no run_by_path.py beside it", result.stderr)
        self.assertFalse((folder / "out").exists())


class BadInputTest(unittest.TestCase):
    """Bad input: clear message, exit 2, nothing written."""

    def setUp(self):
        self.dir = pathlib.Path(tempfile.mkdtemp())
        self.addCleanup(subprocess.run, ["rm", "-rf", str(self.dir)])

    def test_no_backend(self):
        code, err = run_cli("--models_dir", str(self.dir / "out"))
        self.assertEqual(code, 2)
        self.assertIn("no backend selected; pass one or more of --onnx", err)
        self.assertFalse((self.dir / "out").exists())

    def test_unknown_flag_values(self):
        code, err = run_cli("--models_dir", str(self.dir), "--onnx", "--initial-state", "random")
        self.assertEqual(code, 2)
        self.assertIn("invalid choice: 'random'", err)
        code, err = run_cli("--models_dir", str(self.dir / "out"), "--onnx", "--tflite")
        self.assertEqual(code, 2)
        self.assertIn("unknown argument(s) --tflite: neither upstream's gen_qa_implicit_models.py", err)
        self.assertFalse((self.dir / "out").exists())

    def test_torch_aoti(self):
        """Upstream main's PyTorch step passes --torch-aoti: a clear refusal, nothing written."""
        out = self.dir / "out"
        code, err = run_cli("--models_dir", str(out), "--libtorch", "--torch-aoti")
        self.assertEqual(code, 2)
        self.assertIn("--torch-aoti: upstream main's AOTInductor PyTorch models", err)
        self.assertIn("--libtorch", err)
        self.assertFalse(out.exists())

    def test_tensorrt_without_a_gpu_creates_nothing(self):
        """The plan builder's preflight runs before --models_dir is created."""
        out = self.dir / "out"
        no_gpu = BackendUnavailableError("no CUDA GPU found")
        with mock.patch.object(plan_builder, "require_cuda_device", side_effect=no_gpu):
            code, err = run_cli("--models_dir", str(out), "--tensorrt")
        self.assertEqual(code, 2)
        self.assertIn("error: backend unavailable:", err)
        self.assertFalse(out.exists())

    def test_impossible_combination(self):
        code, err = run_cli("--models_dir", str(self.dir), "--onnx", "--dyna", "--variable")
        self.assertEqual(code, 2)
        self.assertIn("--variable with the dyna models", err)
        code, err = run_cli("--models_dir", str(self.dir), "--libtorch", "--dyna")
        self.assertEqual(code, 2)
        self.assertIn("no model matches", err)

    def test_models_dir_is_a_file(self):
        target = self.dir / "file"
        target.write_text("x")
        code, err = run_cli("--models_dir", str(target / "sub"), "--onnx")
        self.assertEqual(code, 2)
        self.assertIn("cannot create", err)
        code, err = run_cli("--models_dir", str(target), "--onnx")
        self.assertEqual(code, 2)
        self.assertIn("is not a directory", err)

    def test_onnx_versions_the_pinned_onnx_does_not_know(self):
        """Issue 13: --onnx_opset 99 used to exit 0 with unloadable models."""
        out = self.dir / "out"
        for flags, message in (
                (("--onnx_opset", "99"), "invalid option: onnx_opset 99: the pinned onnx"),
                (("--onnx_ir_version", "99"), "invalid option: onnx_ir_version 99: the pinned"),
                (("--onnx_opset", "21"), "onnx_opset 21 needs IR version 10 or newer")):
            with self.subTest(flags=flags):
                code, err = run_cli("--models_dir", str(out), "--onnx", *flags)
                self.assertEqual(code, 2)
                self.assertIn(message, err)
                self.assertFalse(out.exists())

    def test_failing_builder_leaves_no_partial_model(self):
        """One error line and exit 2, no traceback; the model it would replace is kept.

        More failures (the fifth model, renames, forked builders): cli_rollback_test.
        """
        previous = self.dir / "onnx_sequence_float32" / "config.pbtxt"
        self.assertEqual(run_cli("--models_dir", str(self.dir), "--onnx", "--dyna")[0], 0)
        previous.parent.mkdir()
        previous.write_text("the previous model's config")
        before = sorted(self.dir.rglob("*"))

        def broken(variant, options, version_dir):
            (version_dir / "model.onnx").write_bytes(b"half")
            raise RuntimeError("disk full")

        with mock.patch.object(onnx_builder, "write_model", broken):
            code, err = run_cli("--models_dir", str(self.dir), "--onnx")
        self.assertEqual(code, 2)
        self.assertNotIn("Traceback", err)
        self.assertEqual(err.splitlines(), [
            f"error: model build failed: onnx_sequence_float32 (model 1 of 8): RuntimeError: disk"
            f" full; nothing was installed and '{self.dir}' is as it was before the run; fix the"
            " cause and rerun"])
        self.assertEqual(sorted(self.dir.rglob("*")), before)
        self.assertEqual(previous.read_text(), "the previous model's config")

    def test_backend_without_its_framework_fails_before_writing(self):
        """This test runs in the onnx environment, which holds no TensorFlow."""
        try:
            import tensorflow  # noqa: F401
        except ModuleNotFoundError:
            pass
        else:
            self.fail("the onnx environment must not hold TensorFlow")
        out = self.dir / "repo"
        code, err = run_cli("--models_dir", str(out), "--all", "--onnx", "--savedmodel")
        self.assertEqual(code, 2, err)
        self.assertIn("needs the Python package 'tensorflow'", err)
        self.assertIn("generators/backends/savedmodel/requirements_lock.txt", err)
        self.assertFalse(out.exists(), "nothing may be written, not even the onnx models")


class DeterminismTest(unittest.TestCase):
    """Two runs give identical manifests; the CLI equals the Bazel build."""

    def _manifest(self, *flags):
        out = pathlib.Path(tempfile.mkdtemp())
        self.addCleanup(subprocess.run, ["rm", "-rf", str(out)])
        code, err = run_cli("--models_dir", str(out), "--all", *flags)
        self.assertEqual(code, 0, err)
        return json.loads((out / "manifest.json").read_text())

    def test_two_runs_identical(self):
        self.assertEqual(self._manifest("--onnx"), self._manifest("--onnx"))


class GenerateModelTest(unittest.TestCase):
    """The per-backend generator binary and its persistent-worker mode."""

    SPEC = json.dumps({"backend": "onnx", "dtype": "int32", "shape": [1], "max_batch": 8})

    def test_wrong_backend(self):
        out = pathlib.Path(tempfile.mkdtemp()) / "m"
        spec = self.SPEC.replace("onnx", "python")
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            code = generate_model.main(Backend.ONNX, ["--spec", spec, "--out", str(out)])
        self.assertEqual(code, 1)
        self.assertIn("use the python_generator", err.getvalue())

    def test_unknown_onnx_opset(self):
        """The generator binary refuses it too, before creating its output."""
        out = pathlib.Path(tempfile.mkdtemp()) / "m"
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            code = generate_model.main(
                Backend.ONNX, ["--spec", self.SPEC, "--out", str(out), "--onnx_opset", "99"])
        self.assertEqual(code, 1)
        self.assertIn("onnx_opset 99: the pinned onnx", err.getvalue())
        self.assertFalse(out.exists())

    def test_onnx_opset_older_than_our_operators(self):
        """Opset 8 exists but lacks Where: refused before the output is created (issue 25)."""
        out = pathlib.Path(tempfile.mkdtemp()) / "m"
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            code = generate_model.main(
                Backend.ONNX, ["--spec", self.SPEC, "--out", str(out), "--onnx_opset", "8"])
        self.assertEqual(code, 1)
        self.assertIn("onnx_opset 8 is older than the operators our ONNX graphs use: Where"
                      " (opset 9 on)", err.getvalue())
        self.assertFalse(out.exists())

    def test_worker_protocol(self):
        out = pathlib.Path(tempfile.mkdtemp())
        self.addCleanup(subprocess.run, ["rm", "-rf", str(out)])
        requests = [
            {"arguments": ["--spec", self.SPEC, "--out", str(out / "good")], "requestId": 0},
            {"arguments": ["--spec", "{", "--out", str(out / "bad")], "requestId": 0},
        ]
        # Bazel sends requests back to back with no newline.
        stdin = "".join(json.dumps(r) for r in requests)
        result = subprocess.run(
            [sys.executable, "-m", "generators.backends.onnx.onnx_generator", "--persistent_worker"],
            input=stdin, capture_output=True, text=True, cwd=REPO_ROOT, check=True,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        )
        responses = [json.loads(line) for line in result.stdout.splitlines()]
        self.assertEqual([r["exitCode"] for r in responses], [0, 1])
        self.assertIn("not valid JSON", responses[1]["output"])
        self.assertTrue((out / "good" / "1" / "model.onnx").is_file())
        self.assertFalse((out / "bad" / "config.pbtxt").exists())


if __name__ == "__main__":
    unittest.main()
