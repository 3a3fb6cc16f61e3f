"""The standalone CLI writes byte-identical models to the Bazel build.

Runs under Bazel only: IMPLICIT_REPO points at //models:implicit_repo. The
CLI regenerates the same backends (`--all`) and the manifests, which hold
every file's sha256, must be equal. Then every repository again, one
upstream-style run each (`--variable`, `--initial-state`, the dyna script,
`--onnx_opset=0` as upstream's pipeline passes it) into its own folder,
which must hold exactly that repository's models. TensorRT plans are left
out: engines are GPU-only and not byte-reproducible.
"""

import json
import os
import pathlib
import shutil
import tempfile
import unittest

from generators import gen_qa_implicit_models, matrix
from generators.manifest import file_digests
from generators.variant import Backend, InitialState, Strategy, Variant
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

    def test_each_repository_from_its_upstream_flags(self):
        bazel = json.loads((pathlib.Path(os.environ[ENV_VAR]) / "manifest.json").read_text())
        entries = matrix.expand()
        # The state-coverage repositories (flags_select false) have no flags of
        # upstream's kind: test_cli_matches_bazel_build covers them with --all.
        by_flags = {e.repository for e in entries if e.flags_select}
        expected = {}
        for model in bazel["models"]:
            if model["variant"]["backend"] != "plan" and model["repository"] in by_flags:
                expected.setdefault(model["repository"], {})[model["name"]] = model
        self.assertEqual(len(expected), 11, sorted(expected))
        variants = {(e.repository, e.variant.name): e.variant for e in entries}
        out = pathlib.Path(tempfile.mkdtemp())
        self.addCleanup(shutil.rmtree, out, ignore_errors=True)
        for repository, models in sorted(expected.items()):
            with self.subTest(repository=repository):
                script, flags = upstream_invocation(variants[(repository, next(iter(models)))])
                flags += sorted({gen_qa_implicit_models.backend_flag(Backend(m["variant"]["backend"]))
                                 for m in models.values()})
                folder = out / repository
                code = gen_qa_implicit_models.main(
                    [*flags, "--onnx_opset=0", f"--models_dir={folder}"], script=script)
                self.assertEqual(code, 0, f"{script.name} {flags}")
                self.assertEqual(sorted(p.name for p in folder.iterdir()), sorted(models))
                for name, model in models.items():
                    self.assertEqual(file_digests(folder / name), model["files"], name)


def upstream_invocation(variant: Variant):
    """The script and flags of upstream's kind that select a variant's repository."""
    if variant.strategy is Strategy.OLDEST:
        return gen_qa_implicit_models.DYNA, []
    if variant.initial_state_dims:
        return gen_qa_implicit_models.IMPLICIT, ["--initial-state-dims"]
    flags = ["--variable"] if variant.variable else []
    if variant.initial_state is not InitialState.NONE:
        flags += ["--initial-state", variant.initial_state.value]
    if variant.crossed_state_order:
        flags.append("--multi-state-order")
    elif variant.multi_state:
        flags.append("--multi-state")
    return gen_qa_implicit_models.IMPLICIT, flags


if __name__ == "__main__":
    unittest.main()
