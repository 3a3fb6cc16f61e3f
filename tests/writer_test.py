"""Atomic installs (generators/writer.py) and the Bazel workers' answers to OS errors.

`install_model` and `RepositoryUpdate` must never lose a model that was
there before: not when the rename of the new model fails after the previous
one was moved aside, not when a later model of the same update fails. The
persistent workers of generate_model and assemble_repo must answer an
OSError with one error line and go on serving, as Bazel sends every later
action to the same process.
"""

import errno
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import unittest
from unittest import mock

from generators import writer
from generators.build_options import BuildOptions
from generators.errors import GeneratorError, OutputDirError
from generators.variant import Backend, DType, Variant

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
VARIANT = Variant(backend=Backend.ONNX, dtype=DType.INT32, shape=(1,), max_batch=8)


def snapshot(root: pathlib.Path) -> dict:
    """Every path under root (hidden ones too) with its bytes; None for a folder."""
    return {path.relative_to(root).as_posix(): None if path.is_dir() else path.read_bytes()
            for path in sorted(root.rglob("*"))}


def failing_rename(should_fail):
    """os.rename that raises ENOSPC for the calls `should_fail(source, target)` picks."""
    real = os.rename

    def rename(source, target):
        if should_fail(pathlib.Path(source), pathlib.Path(target)):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(target))
        real(source, target)

    return mock.patch.object(writer.os, "rename", rename)


class InstallModelTest(unittest.TestCase):
    """One model renamed into place; the previous one survives a failed rename."""

    def setUp(self):
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="writer_test."))
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)

    def test_replaces_the_previous_model(self):
        writer.install_model(VARIANT, BuildOptions(onnx_opset=13), self.dir)
        older = snapshot(self.dir)
        writer.install_model(VARIANT, BuildOptions(), self.dir)
        self.assertNotEqual(snapshot(self.dir), older)
        self.assertEqual(sorted(p.name for p in self.dir.iterdir()), [VARIANT.name])

    def test_second_rename_failing_keeps_the_previous_model(self):
        """Issue 25: the previous model, already moved aside, was deleted with the staging."""
        writer.install_model(VARIANT, BuildOptions(onnx_opset=13), self.dir)
        before = snapshot(self.dir)
        final = self.dir / VARIANT.name
        installs = []

        def new_model_into_place(source, target):
            # The first rename onto the final path is the new model's (the
            # previous one goes aside first, and may come back later).
            if target == final:
                installs.append(source)
                return len(installs) == 1
            return False

        with failing_rename(new_model_into_place):
            with self.assertRaises((OSError, GeneratorError)):
                writer.install_model(VARIANT, BuildOptions(), self.dir)
        self.assertEqual(snapshot(self.dir), before)
        self.assertEqual(len(installs), 2, "the new model's rename, then the previous one's return")


class RepositoryUpdateTest(unittest.TestCase):
    """Several models and a manifest: all installed, or the repository as it was."""

    def setUp(self):
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="writer_test."))
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)
        for name in ("a", "foreign"):
            (self.dir / name).mkdir()
            (self.dir / name / "config.pbtxt").write_text(f"previous {name}")

    @staticmethod
    def stage_models(update, *relatives):
        for relative in relatives:
            path = update.stage(relative)
            path.mkdir()
            (path / "config.pbtxt").write_text(f"new {relative}")

    def test_installs_in_order_and_replaces(self):
        with writer.RepositoryUpdate(self.dir) as update:
            self.stage_models(update, "a", "repo/b")
            self.assertFalse((self.dir / "repo").exists(), "nothing shows before the end")
        self.assertEqual(snapshot(self.dir), {
            "a": None, "a/config.pbtxt": b"new a", "foreign": None,
            "foreign/config.pbtxt": b"previous foreign", "repo": None, "repo/b": None,
            "repo/b/config.pbtxt": b"new repo/b"})

    def test_later_rename_failing_restores_the_earlier_ones(self):
        before = snapshot(self.dir)
        with failing_rename(lambda source, target: target == self.dir / "repo" / "b"):
            with self.assertRaisesRegex(OutputDirError, r"cannot install '.*/repo/b' \(No space"
                                        r" left on device\); nothing was installed"):
                with writer.RepositoryUpdate(self.dir) as update:
                    self.stage_models(update, "a", "c", "repo/b")
        self.assertEqual(snapshot(self.dir), before, "a is back, c and repo/ are gone")

    def test_error_in_the_block_removes_the_folders_it_created(self):
        with self.assertRaisesRegex(RuntimeError, "builder bug"):
            with writer.RepositoryUpdate(self.dir / "x" / "y") as update:
                self.stage_models(update, "a")
                raise RuntimeError("builder bug")
        self.assertEqual(sorted(p.name for p in self.dir.iterdir()), ["a", "foreign"])

    def test_restore_failing_keeps_the_previous_version(self):
        """If a replaced model cannot go back, it is kept and the error says where."""
        def fail(source, target):  # c's install, then a's return from the aside copies
            return target == self.dir / "c" or source.parent.name == "old"

        with failing_rename(fail), self.assertRaisesRegex(
                OutputDirError, r"could not restore '.*/a' \(No space left on device\) after a"
                                r" failed run; their previous versions are kept under '.*': move"
                                r" them back by hand") as caught:
            with writer.RepositoryUpdate(self.dir) as update:
                self.stage_models(update, "a", "c")
        kept = pathlib.Path(str(caught.exception).rsplit("under '", 1)[1].split("'")[0])
        self.assertEqual((kept / "a" / "config.pbtxt").read_text(), "previous a")

    def test_a_file_where_a_repository_goes_fails_before_building(self):
        (self.dir / "repo").write_text("")
        with self.assertRaisesRegex(OutputDirError, r"'.*/repo' is not a directory"):
            with writer.RepositoryUpdate(self.dir) as update:
                update.stage("repo/b")
        self.assertEqual(sorted(p.name for p in self.dir.iterdir()), ["a", "foreign", "repo"])


class WorkerOsErrorTest(unittest.TestCase):
    """Both persistent workers answer an OSError with one line and serve the next request."""

    SPEC = json.dumps({"backend": "onnx", "dtype": "int32", "shape": [1], "max_batch": 8})

    def setUp(self):
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="writer_test."))
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)
        self.file = self.dir / "a_file"
        self.file.write_text("")  # an --out below it cannot be created: NotADirectoryError

    def serve(self, module, *requests):
        stdin = "".join(json.dumps({"arguments": list(r), "requestId": i})
                        for i, r in enumerate(requests))
        result = subprocess.run(
            [sys.executable, "-m", module, "--persistent_worker"], input=stdin,
            capture_output=True, text=True, cwd=REPO_ROOT, check=False,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
        self.assertEqual(result.returncode, 0, result.stderr)
        return [json.loads(line) for line in result.stdout.splitlines()]

    def assertOsErrorAnswer(self, response):  # noqa: N802
        self.assertEqual(response["exitCode"], 1)
        self.assertRegex(response["output"],
                         rf"^error: \[Errno 20\] Not a directory: '{self.file}.*'; check that path,"
                         r" its permissions and free space\n$")

    def test_assemble_repo(self):
        responses = self.serve("generators.assemble_repo",
                               ["--out", str(self.file / "tree")], ["--out", str(self.dir / "tree")])
        self.assertEqual([r["exitCode"] for r in responses], [1, 0], responses)
        self.assertOsErrorAnswer(responses[0])
        self.assertTrue((self.dir / "tree" / "manifest.json").is_file())

    def test_generate_model(self):
        responses = self.serve(
            "generators.backends.onnx.onnx_generator",
            ["--spec", self.SPEC, "--out", str(self.file / "model")],
            ["--spec", self.SPEC, "--out", str(self.dir / "model")])
        self.assertEqual([r["exitCode"] for r in responses], [1, 0], responses)
        self.assertOsErrorAnswer(responses[0])
        self.assertTrue((self.dir / "model" / "1" / "model.onnx").is_file())


if __name__ == "__main__":
    unittest.main()
