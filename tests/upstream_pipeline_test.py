"""Upstream's own pipeline lines run verbatim and write the Bazel build's models.

Each line of `tests/upstream_pipeline_lines.sh` (the implicit-state lines of
Triton's `qa/common/gen_qa_model_repository`) runs through bash as upstream's
script runs it: `SRCDIR` is this checkout's `generators/` folder,
`ONNX_OPSET=0`, every destination folder exists beforehand (upstream makes
them with `mkdir -p`), the working directory is a scratch folder, PYTHONPATH
is unset and `python3` is an interpreter with the backends' requirement sets
installed (this test's own, the `cli` environment).

Then:
- every ONNX and libtorch line exits 0;
- without TensorRT and a GPU, every TensorRT line exits 2 with the
  backend-unavailable message and leaves its folder as it was; with them,
  it exits 0 and writes plans (not compared: engines are not reproducible);
- each destination folder holds exactly the models the Bazel build has in
  the repository of the same name for the families its lines name, every
  file byte-identical (sha256 against the build's manifest).

Under Bazel the build is //models:implicit_repo (IMPLICIT_REPO); run by hand,
the standalone CLI's `--all` output stands in for it.
"""

import json
import os
import pathlib
import shlex
import subprocess
import sys
import tempfile
import unittest

from generators import gen_qa_implicit_models, matrix
from generators.backends import builder_for
from generators.errors import BackendUnavailableError
from generators.manifest import MANIFEST_NAME, file_digests
from generators.variant import Backend
from tests.repo_location import implicit_repo

HERE = pathlib.Path(__file__).resolve().parent
LINES = HERE / "upstream_pipeline_lines.sh"
SRCDIR = pathlib.Path(gen_qa_implicit_models.__file__).parent
# Upstream's destination variables and the repository each one is.
DESTINATIONS = {
    "IMPLICITSEQDESTDIR": "qa_sequence_implicit_model_repository",
    "VARIMPLICITSEQDESTDIR": "qa_variable_sequence_implicit_model_repository",
    "INITIALSTATEIMPLICITSEQDESTDIR": "qa_sequence_initial_state_implicit_model_repository",
    "VARINITIALSTATEIMPLICITSEQDESTDIR": "qa_variable_sequence_initial_state_implicit_model_repository",
    "DYNASEQIMPLICITDESTDIR": "qa_dyna_sequence_implicit_model_repository",
}
FAMILY_FLAGS = {"--onnx": Backend.ONNX, "--libtorch": Backend.LIBTORCH, "--tensorrt": Backend.PLAN}


def pipeline_lines():
    """The command lines of the lines file, comments dropped."""
    return [line for line in LINES.read_text().splitlines() if line and not line.startswith("#")]


def destination(line: str) -> str:
    """The destination variable a line writes to (`--models_dir=$VAR`)."""
    (flag,) = [t for t in shlex.split(line) if t.startswith("--models_dir=$")]
    return flag.split("$", 1)[1]


def family(line: str) -> Backend:
    """The one backend a line generates."""
    (backend,) = [FAMILY_FLAGS[t] for t in shlex.split(line) if t in FAMILY_FLAGS]
    return backend


def plans_buildable() -> bool:
    """True on a machine with TensorRT and a CUDA GPU."""
    try:
        builder_for(Backend.PLAN).check_available()
    except BackendUnavailableError:
        return False
    return True


class UpstreamPipelineTest(unittest.TestCase):
    """Run every line once (setUpClass), then check exits and folders."""

    @classmethod
    def setUpClass(cls):
        cls.work = pathlib.Path(tempfile.mkdtemp(prefix="upstream_pipeline."))
        bin_dir = cls.work / "bin"
        bin_dir.mkdir()
        # A wrapper, not a symlink: a venv's interpreter finds its packages from the path it runs as.
        (bin_dir / "python3").write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} "$@"\n')
        (bin_dir / "python3").chmod(0o755)
        scratch = cls.work / "cwd"
        scratch.mkdir()
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("RUNFILES")}
        env.update(PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}",
                   PYTHONNOUSERSITE="1", SRCDIR=str(SRCDIR), ONNX_OPSET="0")
        for var, repository in DESTINATIONS.items():
            env[var] = str(cls.work / "models" / repository)
            pathlib.Path(env[var]).mkdir(parents=True)
        cls.runs = []
        for line in pipeline_lines():
            before = file_digests(pathlib.Path(env[destination(line)]))
            result = subprocess.run(["bash", "-c", line], cwd=scratch, env=env,
                                    capture_output=True, text=True, check=False)
            after = file_digests(pathlib.Path(env[destination(line)]))
            cls.runs.append((line, result, before, after))
            last = (result.stderr.strip().splitlines() or [""])[-1]
            sys.stderr.write(f"exit {result.returncode}: {line}\n    {last[:200]}\n")

    @classmethod
    def tearDownClass(cls):
        subprocess.run(["rm", "-rf", str(cls.work)], check=False)

    def test_the_lines_file_holds_upstreams_ten_lines(self):
        lines = pipeline_lines()
        self.assertEqual(len(lines), 10)
        self.assertTrue(all(line.startswith("python3 $SRCDIR/gen_qa_") for line in lines))
        self.assertEqual({destination(line) for line in lines}, set(DESTINATIONS))

    def test_cpu_families_succeed(self):
        for line, result, _, after in self.runs:
            if family(line) is Backend.PLAN:
                continue
            with self.subTest(line=line):
                self.assertEqual(result.returncode, 0, result.stderr)
                self.assertRegex(result.stderr, r"generated \d+ models in")
                self.assertNotIn("Traceback", result.stderr)
                self.assertTrue(after)

    def test_tensorrt_lines(self):
        buildable = plans_buildable()
        for line, result, before, after in self.runs:
            if family(line) is not Backend.PLAN:
                continue
            with self.subTest(line=line):
                if buildable:
                    self.assertEqual(result.returncode, 0, result.stderr)
                    self.assertTrue(any(p.endswith("model.plan") for p in after))
                    continue
                self.assertEqual(result.returncode, 2, result.stderr)
                self.assertIn("error: backend unavailable:", result.stderr)
                self.assertIn("NVIDIA GPU", result.stderr)
                self.assertNotIn("Traceback", result.stderr)
                self.assertEqual(after, before, "a failed TensorRT line must write nothing")

    def test_folders_equal_the_bazel_build(self):
        built = implicit_repo(("libtorch", "onnx"))
        manifest = {(m["repository"], m["name"]): m
                    for m in json.loads((built / MANIFEST_NAME).read_text())["models"]}
        families = {}
        for line in pipeline_lines():
            if family(line) is not Backend.PLAN:
                families.setdefault(destination(line), set()).add(family(line).value)
        for var, repository in DESTINATIONS.items():
            with self.subTest(repository=repository):
                folder = self.work / "models" / repository
                expected = sorted(name for (repo, name), m in manifest.items()
                                  if repo == repository and m["variant"]["backend"] in families[var])
                self.assertTrue(expected, f"the build has no {sorted(families[var])} models in {repository}")
                written = sorted(p.name for p in folder.iterdir() if not p.name.startswith("plan_"))
                self.assertEqual(written, expected)
                for name in expected:
                    self.assertEqual(file_digests(folder / name), manifest[(repository, name)]["files"],
                                     f"{repository}/{name} differs from the Bazel build")

    def test_matrix_names_every_destination(self):
        names = {entry.repository for entry in matrix.expand()}
        self.assertLessEqual(set(DESTINATIONS.values()), names)


if __name__ == "__main__":
    unittest.main()
