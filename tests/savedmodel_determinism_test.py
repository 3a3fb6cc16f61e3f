"""The savedmodel builder writes the same bytes for the same variant.

TensorFlow names functions after a process-wide counter, so the builder asks
for one forked child per model (FORK_PER_MODEL). One variant is built four
ways, each in its own fresh interpreter with its own hash seed:

- by the Bazel persistent worker, first and again after another model;
- by a one-shot `savedmodel_generator --spec ... --out ...` process;
- by the standalone CLI (`gen_qa_implicit_models --all --savedmodel`) on a
  three-model matrix, as its second model.

All four trees must be byte-identical, and the model must still load and
answer. A multi-state variant (two state pairs) and a state-coverage variant
(a [sum, count] state, which has its own serving function) are built by the
worker, last, and by the CLI, after the others: those trees must match too. fingerprint.pb
must agree with what TensorFlow computes from the saved files (only its
random uuid replaced), no folder may be empty, and no process may leave a
file in its temporary directory (forked children exit without cleanup).

Run: `python -m unittest tests.savedmodel_determinism_test` or as a script.
"""

import pathlib
import shutil
import tempfile
import unittest

import numpy as np

from generators.manifest import file_digests
from generators.variant import Backend, DType, InitialState, StatePair, Variant
from tests.determinism_support import build_all_ways

VARIANT = Variant(backend=Backend.SAVEDMODEL, dtype=DType.OBJECT, shape=(-1,), max_batch=8,
                  initial_state=InitialState.FILE)
OTHER = Variant(backend=Backend.SAVEDMODEL, dtype=DType.INT32, shape=(1,), max_batch=8)
MULTI = Variant(backend=Backend.SAVEDMODEL, dtype=DType.FLOAT32, shape=(1,), max_batch=0,
                initial_state=InitialState.FILE,
                state_pairs=(StatePair("INPUT_STATE", "OUTPUT_STATE"),
                             StatePair("INPUT_STATE_1", "OUTPUT_STATE_1")))
SHAPED = Variant(backend=Backend.SAVEDMODEL, dtype=DType.INT32, shape=(1,), max_batch=8,
                 initial_state=InitialState.ZERO, state_dims=(2,))
EXPORT_DIR = pathlib.Path("1") / "model.savedmodel"
# The CLI on a four-model matrix: the int32 model first, then VARIANT, MULTI and SHAPED.
_CLI = """
import sys
from generators import gen_qa_implicit_models, matrix
repo = {"name": "repo", "shape": [-1], "max_batch": [8], "initial_state": "file",
        "strategy": "direct", "backends": ["savedmodel"], "dtypes": ["int32", "object"]}
multi = {"name": "multi", "shape": [1], "max_batch": [0], "initial_state": "file",
         "strategy": "direct", "backends": ["savedmodel"], "dtypes": ["float32"],
         "state_pair_sets": [[["INPUT_STATE", "OUTPUT_STATE"], ["INPUT_STATE_1", "OUTPUT_STATE_1"]]]}
shaped = {"name": "shaped", "shape": [1], "max_batch": [8], "initial_state": "zero",
          "strategy": "direct", "backends": ["savedmodel"], "dtypes": ["int32"],
          "state_dims_sets": [[2]]}
MATRIX = {"dtypes": [], "repositories": [repo, multi, shaped]}
gen_qa_implicit_models.expand = lambda **selection: matrix.expand(MATRIX, **selection)
sys.exit(gen_qa_implicit_models.main(["--models_dir", sys.argv[1], "--all", "--savedmodel"]))
"""
_GENERATOR = "generators.backends.savedmodel.savedmodel_generator"
_WORKER_REQUESTS = [(VARIANT, "first"), (OTHER, "other"), (VARIANT, "again"), (MULTI, "multi"),
                    (SHAPED, "shaped")]


class DeterminismTest(unittest.TestCase):
    """Worker children, a fresh process and the CLI agree byte for byte."""

    @classmethod
    def setUpClass(cls) -> None:
        """Build the variant the four ways, concurrently."""
        cls.out = pathlib.Path(tempfile.mkdtemp(prefix="savedmodel_determinism."))
        cls.tmp = cls.out / "tmp"
        cls.tmp.mkdir()
        cls.responses = build_all_ways(cls.out, _GENERATOR, VARIANT, _CLI, _WORKER_REQUESTS, cls.tmp)
        cls.first = file_digests(cls.out / "first")

    @classmethod
    def tearDownClass(cls) -> None:
        """Remove the trees."""
        shutil.rmtree(cls.out, ignore_errors=True)

    def test_worker_answers_every_request(self):
        """Five requests, five successful responses."""
        self.assertEqual([r["exitCode"] for r in self.responses], [0] * 5, self.responses)
        self.assertIn((EXPORT_DIR / "saved_model.pb").as_posix(), self.first)

    def test_worker_children_agree(self):
        """A model built after another one is unchanged."""
        self.assertEqual(file_digests(self.out / "again"), self.first)

    def test_fresh_process_agrees(self):
        """A one-shot generator process writes the worker's bytes."""
        self.assertEqual(file_digests(self.out / "fresh"), self.first)

    def test_cli_agrees(self):
        """The standalone CLI writes the worker's bytes (as its second model)."""
        self.assertEqual(file_digests(self.out / "cli" / "repo" / VARIANT.name), self.first)

    def test_cli_agrees_on_multi_state(self):
        """The CLI's multi-state model equals the worker's, initial-state files included."""
        worker = file_digests(self.out / "multi")
        self.assertIn("initial_state/input_state_1_data", worker)
        self.assertEqual(file_digests(self.out / "cli" / "multi" / MULTI.name), worker)

    def test_cli_agrees_on_a_shaped_state(self):
        """The CLI's [sum, count] state model equals the worker's."""
        worker = file_digests(self.out / "shaped")
        self.assertIn((EXPORT_DIR / "saved_model.pb").as_posix(), worker)
        self.assertEqual(file_digests(self.out / "cli" / "shaped" / SHAPED.name), worker)

    def test_no_empty_directories(self):
        """Empty folders would not survive a Bazel remote-cache round trip."""
        for path in (self.out / "first").rglob("*"):
            if path.is_dir():
                self.assertTrue(any(path.iterdir()), f"{path} is empty")

    def test_no_temporary_files_left(self):
        """No AutoGraph source file (or other temporary) outlives the processes."""
        leftovers = sorted(str(p.relative_to(self.tmp)) for p in self.tmp.rglob("*") if p.is_file())
        self.assertEqual(leftovers, [])

    def test_fingerprint_matches_the_saved_files(self):
        """Every hash matches a fresh computation; only the random uuid differs."""
        import tensorflow as tf
        from tensorflow.core.protobuf import fingerprint_pb2
        from tensorflow.python.saved_model.pywrap_saved_model import fingerprinting

        export_dir = self.out / "first" / EXPORT_DIR
        written = fingerprint_pb2.FingerprintDef.FromString(
            (export_dir / "fingerprint.pb").read_bytes())
        fresh = fingerprint_pb2.FingerprintDef.FromString(
            fingerprinting.CreateFingerprintDef(str(export_dir)))
        self.assertNotEqual(written.uuid, fresh.uuid)
        written.ClearField("uuid")
        fresh.ClearField("uuid")
        self.assertEqual(written, fresh)
        read = tf.saved_model.experimental.read_fingerprint(str(export_dir))
        self.assertEqual(read.saved_model_checksum, fresh.saved_model_checksum)

    def test_model_still_loads_and_answers(self):
        """String file state (Triton feeds ""), width 3: 1, 2, 3, 4 -> "10" in every element."""
        from tests.runners import savedmodel_runner

        runner = savedmodel_runner.load(self.out / "again")
        self.addCleanup(runner.close)
        for index, value in enumerate([1, 2, 3, 4]):
            outputs = runner({
                "INPUT": np.full((1, 3), str(value).encode(), dtype=object),
                "INPUT_STATE": np.full((1, 1), b"", dtype=object),
                "START": np.array([[index == 0]], dtype=np.int32),
                "END": np.array([[index == 3]], dtype=np.int32),
                "READY": np.array([[1]], dtype=np.int32),
                "CORRID": np.array([[9]], dtype=np.uint64),
            })
        self.assertEqual(outputs["OUTPUT"].tolist(), [[b"10"] * 3])


if __name__ == "__main__":
    unittest.main()
