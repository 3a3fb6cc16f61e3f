"""A failing CLI run leaves --models_dir exactly as it was, with one error line.

Builders that fail on the first or the fifth model (a RuntimeError, an
OSError, in this process or in a forked child), a rename that fails while
the built models go into place, and an ONNX opset older than our graphs'
operators: each gives exit status 2 and one `error:` line naming the model or
value, never a traceback, and afterwards the folder holds the same files
with the same bytes as before the run (models the run would have replaced
included), and no folder the run created.
"""

import contextlib
import errno
import io
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import unittest
from unittest import mock

from generators import gen_qa_implicit_models, writer
from generators.backends.onnx import onnx_builder
from tests.expected_models import EXPECTED_MODELS

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent


def no_space() -> OSError:
    """A full disk's error (a fresh one each time: a raised exception keeps its traceback)."""
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def run_cli(*argv):
    """Run the CLI in-process; returns (exit status, stderr text)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = gen_qa_implicit_models.main(list(argv))
    return code, err.getvalue()


def snapshot(root: pathlib.Path) -> dict:
    """Every path under root (hidden ones too) with its bytes; None for a folder."""
    return {path.relative_to(root).as_posix(): None if path.is_dir() else path.read_bytes()
            for path in sorted(root.rglob("*"))}


def failing_on(call: int, error: Exception):
    """A write_model that builds as onnx's does but raises `error` on its `call`-th call."""
    real = onnx_builder.write_model
    calls = []

    def write_model(variant, options, version_dir):
        calls.append(variant.name)
        if len(calls) == call:
            (version_dir / "model.onnx").write_bytes(b"half")
            raise error
        real(variant, options, version_dir)

    return write_model


class RollbackTest(unittest.TestCase):
    """Errors during a run: exit 2, one line, --models_dir unchanged."""

    def setUp(self):
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="cli_rollback_test."))
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)

    def populate(self, *flags) -> dict:
        """A foreign model and the models a run with flags writes; returns the snapshot."""
        foreign = self.dir / "someone_elses_model"
        foreign.mkdir()
        (foreign / "config.pbtxt").write_text('name: "someone_elses_model"\n')
        code, err = run_cli("--models_dir", str(self.dir), "--onnx", *flags)
        self.assertEqual(code, 0, err)
        return snapshot(self.dir)

    def assertOneErrorLine(self, err: str, pattern: str) -> None:  # noqa: N802
        """The run's last stderr line is its only error line, and it matches pattern."""
        self.assertNotIn("Traceback", err)
        lines = err.splitlines()
        self.assertEqual([line for line in lines if line.startswith("error:")], lines[-1:], err)
        self.assertRegex(lines[-1], pattern)

    def test_builder_failing_on_the_fifth_model(self):
        # The same model names as the failing run's, other bytes: it would replace them.
        before = self.populate("--initial-state", "zero")
        self.assertIn("onnx_sequence_int32/1/model.onnx", before)
        with mock.patch.object(onnx_builder, "write_model", failing_on(5, no_space())):
            code, err = run_cli("--models_dir", str(self.dir), "--onnx")
        self.assertEqual(code, 2, err)
        progress = [line for line in err.splitlines() if line.startswith("[")]
        self.assertEqual(len(progress), 4, "models 1 to 4 were built before the failure")
        self.assertOneErrorLine(
            err, r"^error: model build failed: onnx_\w+ \(model 5 of 8\): OSError: \[Errno 28\]"
                 r" No space left on device; nothing was installed and '.*' is as it was before"
                 " the run; fix the cause and rerun$")
        self.assertEqual(snapshot(self.dir), before)

    def test_builder_failing_on_the_first_model(self):
        """Into folders the run creates: none of them is left."""
        models_dir = self.dir / "new" / "repository"
        with mock.patch.object(onnx_builder, "write_model",
                               failing_on(1, RuntimeError("disk full"))):
            code, err = run_cli("--models_dir", str(models_dir), "--onnx")
        self.assertEqual(code, 2, err)
        self.assertOneErrorLine(
            err, r"^error: model build failed: onnx_\w+ \(model 1 of 8\): RuntimeError: disk full;")
        self.assertEqual(list(self.dir.iterdir()), [])

    def test_all_failing_late_keeps_the_previous_tree(self):
        """--all: the repositories and manifest of an earlier run stay as they were."""
        before = self.populate("--all", "--onnx_opset", "13")  # other bytes than the default
        self.assertIn("manifest.json", before)
        with mock.patch.object(onnx_builder, "write_model", failing_on(40, no_space())):
            code, err = run_cli("--models_dir", str(self.dir), "--onnx", "--all")
        self.assertEqual(code, 2, err)
        onnx_models = sum(row.get("onnx", 0) for row in EXPECTED_MODELS.values())
        self.assertOneErrorLine(err, rf"\(model 40 of {onnx_models}\): OSError: \[Errno 28\]")
        self.assertEqual(snapshot(self.dir), before)

    def test_all_into_a_new_folder_leaves_no_repository(self):
        with mock.patch.object(onnx_builder, "write_model", failing_on(40, no_space())):
            code, err = run_cli("--models_dir", str(self.dir / "tree"), "--onnx", "--all")
        self.assertEqual(code, 2, err)
        self.assertEqual(list(self.dir.iterdir()), [])

    def test_forked_builder_failing(self):
        """A builder that builds in a forked child (savedmodel's way) fails the same way."""
        before = self.populate("--initial-state", "zero")
        real = onnx_builder.write_model

        def write_model(variant, options, version_dir):
            if variant.name == "onnx_sequence_bool":  # the child's call count is its own
                raise no_space()
            real(variant, options, version_dir)

        with mock.patch.object(onnx_builder, "FORK_PER_MODEL", True, create=True), \
                mock.patch.object(onnx_builder, "write_model", write_model):
            code, err = run_cli("--models_dir", str(self.dir), "--onnx")
        self.assertEqual(code, 2, err)
        self.assertOneErrorLine(
            err, r"^error: model build failed: onnx_sequence_bool \(model \d of 8\): model build"
                 r" in a forked child failed: OSError: \[Errno 28\] No space left on device;")
        self.assertEqual(snapshot(self.dir), before)

    def test_rename_failing_while_installing(self):
        """Models 1 to 4 already renamed in are taken out, the ones they replaced put back."""
        before = self.populate("--initial-state", "zero")
        real_rename, installs = os.rename, []

        def rename(source, target):
            if pathlib.Path(source).parent.name == "new":  # a built model going into place
                installs.append(target)
                if len(installs) == 5:
                    raise no_space()
            real_rename(source, target)

        with mock.patch.object(writer.os, "rename", rename):
            code, err = run_cli("--models_dir", str(self.dir), "--onnx")
        self.assertEqual(len(installs), 5)
        self.assertEqual(code, 2, err)
        self.assertOneErrorLine(
            err, r"^error: output directory: cannot install '.*/onnx_\w+' \(No space left on"
                 r" device\); nothing was installed and '.*' is as it was before;")
        self.assertEqual(snapshot(self.dir), before)

    def test_unexpected_error_is_one_line(self):
        """Even a bug of the generator itself: one line, exit 2, no traceback."""
        with mock.patch.object(gen_qa_implicit_models, "expand", side_effect=KeyError("dtype")):
            code, err = run_cli("--models_dir", str(self.dir / "out"), "--onnx")
        self.assertEqual(code, 2)
        self.assertOneErrorLine(err, r"^error: unexpected KeyError: 'dtype'; this is a bug")
        self.assertFalse((self.dir / "out").exists())


class OnnxOpsetTest(unittest.TestCase):
    """An opset that exists but lacks an operator our graphs use (issue 25: Where, 8)."""

    MESSAGE = (r"^error: invalid option: onnx_opset 8 is older than the operators our ONNX graphs"
               r" use: Where \(opset 9 on\), per onnx's operator registry \(onnx.defs\); pass"
               r" onnx_opset 9 or newer, or 0 for the generator's choice \(17\)$")

    def setUp(self):
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="cli_rollback_test."))
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)

    def test_opset_8_in_process(self):
        code, err = run_cli("--onnx", "--onnx_opset", "8", "--models_dir", str(self.dir / "D"))
        self.assertEqual(code, 2, err)
        self.assertRegex(err, self.MESSAGE)
        self.assertEqual(list(self.dir.iterdir()), [])

    def test_opset_8_by_file_path(self):
        """The issue's command line, as a user runs it: exit 2, one line, D not created."""
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        result = subprocess.run(
            [sys.executable, str(REPO_ROOT / "generators" / "gen_qa_implicit_models.py"),
             "--onnx", "--onnx_opset", "8", "--models_dir", "D"],
            cwd=self.dir, env=env, capture_output=True, text=True, check=False)
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertEqual(len(result.stderr.splitlines()), 1, result.stderr)
        self.assertRegex(result.stderr, self.MESSAGE)
        self.assertEqual(list(self.dir.iterdir()), [])


if __name__ == "__main__":
    unittest.main()
