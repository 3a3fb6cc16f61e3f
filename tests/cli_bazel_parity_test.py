"""The standalone CLI writes byte-identical models to the Bazel build.

Runs under Bazel only: IMPLICIT_REPO points at //models:implicit_repo. The
CLI regenerates the same backends (`--all`) and the manifests, which hold
every file's sha256, must be equal. TensorRT plans are left out: engines
are GPU-only and not byte-reproducible.
"""

import json
import os
import pathlib
import shutil
import tempfile
import unittest

from generators import gen_qa_implicit_models
from generators.variant import Backend
from tests.repo_location import ENV_VAR


class CliBazelParityTest(unittest.TestCase):
    """Compare the CLI's manifest with the Bazel build's."""

    def test_cli_matches_bazel_build(self):
        self.assertIn(ENV_VAR, os.environ, "run under Bazel: bazel test //tests:cli_bazel_parity_test")
        bazel = json.loads((pathlib.Path(os.environ[ENV_VAR]) / "manifest.json").read_text())
        expected = [m for m in bazel["models"] if m["variant"]["backend"] != "plan"]
        backends = sorted({m["variant"]["backend"] for m in expected})
        out = pathlib.Path(tempfile.mkdtemp())
        self.addCleanup(shutil.rmtree, out, ignore_errors=True)
        flags = ["--models_dir", str(out), "--all"]
        flags += [gen_qa_implicit_models.backend_flag(Backend(b)) for b in backends]
        self.assertEqual(gen_qa_implicit_models.main(flags), 0)
        ours = json.loads((out / "manifest.json").read_text())["models"]
        self.assertEqual(len(ours), len(expected))
        self.assertEqual(ours, expected)


if __name__ == "__main__":
    unittest.main()
