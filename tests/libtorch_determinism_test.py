"""The libtorch builder writes the same `model.pt` bytes for the same variant.

`torch.jit.save` alone is not reproducible: its zip names the top folder
after the output file, `.data/serialization_id` is random and the
`*.debug_pkl` records hold source paths. The builder rewrites the archive
(generators/backends/libtorch/libtorch_builder.py `deterministic_archive`).
One variant is built four ways, each in its own interpreter with its own
hash seed:

- by the Bazel persistent worker, first and again after two other models;
- by a one-shot `libtorch_generator --spec ... --out ...` process;
- by the standalone CLI (`gen_qa_implicit_models --all --libtorch`) on a
  three-model matrix, as its last model.

All must be byte-identical; a multi-state variant built by the worker and
by the CLI must match too. The rewritten archive must still load with
`torch.jit.load` and answer, keep torch's record order under a fixed folder
name, and carry a serialization id that is a function of the content.

Run: `python -m unittest tests.libtorch_determinism_test` or as a script.
"""

import io
import pathlib
import shutil
import tempfile
import unittest
import zipfile

import torch

from generators.backends.libtorch import libtorch_builder
from generators.manifest import file_digests
from generators.variant import Backend, DType, InitialState, StatePair, Variant
from tests.determinism_support import build_all_ways

VARIANT = Variant(backend=Backend.LIBTORCH, dtype=DType.FLOAT32, shape=(-1,), max_batch=8)
OTHER = Variant(backend=Backend.LIBTORCH, dtype=DType.OBJECT, shape=(1,), max_batch=0)
MULTI = Variant(backend=Backend.LIBTORCH, dtype=DType.INT32, shape=(1,), max_batch=0,
                initial_state=InitialState.FILE,
                state_pairs=(StatePair("INPUT_STATE", "OUTPUT_STATE"),
                             StatePair("INPUT_STATE_1", "OUTPUT_STATE_1")))
MODEL = pathlib.Path("1") / "model.pt"
# The CLI on a three-model matrix: MULTI, the int32 model, then VARIANT.
_CLI = """
import sys
from generators import gen_qa_implicit_models, matrix
multi = {"name": "multi", "shape": [1], "max_batch": [0], "initial_state": "file",
         "strategy": "direct", "backends": ["libtorch"], "dtypes": ["int32"],
         "state_pair_sets": [[["INPUT_STATE", "OUTPUT_STATE"], ["INPUT_STATE_1", "OUTPUT_STATE_1"]]]}
repo = {"name": "repo", "shape": [-1], "max_batch": [8], "initial_state": "none",
        "strategy": "direct", "backends": ["libtorch"], "dtypes": ["int32", "float32"]}
MATRIX = {"dtypes": [], "repositories": [multi, repo]}
gen_qa_implicit_models.expand = lambda **selection: matrix.expand(MATRIX, **selection)
sys.exit(gen_qa_implicit_models.main(["--models_dir", sys.argv[1], "--all", "--libtorch"]))
"""
_GENERATOR = "generators.backends.libtorch.libtorch_generator"
_WORKER_REQUESTS = [(VARIANT, "first"), (OTHER, "other"), (MULTI, "multi"), (VARIANT, "again")]


class DeterminismTest(unittest.TestCase):
    """Worker, a fresh process and the CLI agree byte for byte."""

    @classmethod
    def setUpClass(cls) -> None:
        """Build the variant the four ways, concurrently."""
        cls.out = pathlib.Path(tempfile.mkdtemp(prefix="libtorch_determinism."))
        cls.responses = build_all_ways(cls.out, _GENERATOR, VARIANT, _CLI, _WORKER_REQUESTS)
        cls.first = file_digests(cls.out / "first")

    @classmethod
    def tearDownClass(cls) -> None:
        """Remove the trees."""
        shutil.rmtree(cls.out, ignore_errors=True)

    def test_worker_answers_every_request(self):
        """Four requests, four successful responses."""
        self.assertEqual([r["exitCode"] for r in self.responses], [0, 0, 0, 0], self.responses)
        self.assertIn(MODEL.as_posix(), self.first)

    def test_worker_agrees_after_other_models(self):
        """A model built after a string and a multi-state model is unchanged."""
        self.assertEqual(file_digests(self.out / "again"), self.first)

    def test_fresh_process_agrees(self):
        """A one-shot generator process writes the worker's bytes."""
        self.assertEqual(file_digests(self.out / "fresh"), self.first)

    def test_in_process_build_agrees(self):
        """This test's own process (another hash seed, other imports) writes them too."""
        built = libtorch_builder.build_model(VARIANT)
        self.assertEqual(built, (self.out / "first" / MODEL).read_bytes())

    def test_cli_agrees(self):
        """The standalone CLI writes the worker's bytes (as its last model)."""
        self.assertEqual(file_digests(self.out / "cli" / "repo" / VARIANT.name), self.first)

    def test_cli_agrees_on_multi_state(self):
        """The CLI's multi-state model equals the worker's, initial-state files included."""
        worker = file_digests(self.out / "multi")
        self.assertIn("initial_state/input_state_1_data", worker)
        self.assertEqual(file_digests(self.out / "cli" / "multi" / MULTI.name), worker)

    def test_archive_layout(self):
        """Fixed folder, torch's record order, no debug records, 64-byte aligned payloads."""
        data = (self.out / "first" / MODEL).read_bytes()
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
        names = [info.filename for info in infos]
        self.assertEqual(names[0], "model/data.pkl")
        self.assertEqual(names[-1], "model/.data/serialization_id")
        self.assertTrue(all(n.startswith("model/") for n in names), names)
        self.assertFalse([n for n in names if n.endswith(".debug_pkl") or "mangle" in n], names)
        for info in infos:
            self.assertEqual(info.date_time, (1980, 1, 1, 0, 0, 0))
            offset = info.header_offset + 30 + len(info.filename) + len(info.extra)
            self.assertEqual(offset % 64, 0, info.filename)

    def test_serialization_id_follows_content(self):
        """A different module gets a different id; the id is 40 decimal digits."""
        ids = []
        for name in ("first", "multi"):
            with zipfile.ZipFile(self.out / name / MODEL) as archive:
                ids.append(archive.read("model/.data/serialization_id").decode())
        self.assertNotEqual(ids[0], ids[1])
        self.assertRegex(ids[0], r"^\d{40}$")

    def test_model_still_loads_and_answers(self):
        """torch.jit.load reads the rewritten file: widths 3 after a width-1 state, 1..4 -> 10."""
        module = torch.jit.load(str(self.out / "again" / MODEL))
        state = torch.full((1, 1), float("nan"))
        for index, value in enumerate([1.0, 2.0, 3.0, 4.0]):
            output, state = module(torch.full((1, 3), value), state,
                                   torch.tensor([[float(index == 0)]]), torch.tensor([[1.0]]))
        self.assertEqual(output.tolist(), [[10.0] * 3])


if __name__ == "__main__":
    unittest.main()
