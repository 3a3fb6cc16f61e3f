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
by the CLI must match too, and so must the state-coverage modules (a BOOL
state, a wider state, a [sum, count] and a scalar state, a dyna model) built
by the worker and by this process. The rewritten archive must still load with
`torch.jit.load` and answer, keep torch's record order under a fixed folder
name, and carry a serialization id that is a function of the content.

`CoverageContractTest` runs the state-coverage models in-process, called as
Triton's pytorch backend calls them (positional forward, batch-first tensors,
the state each answer hands back fed to the next step), against the
contract's literal values (CONTRACT.md section 3).

Run: `python -m unittest tests.libtorch_determinism_test` or as a script.
"""

import dataclasses
import io
import pathlib
import shutil
import tempfile
import unittest
import zipfile
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch

from generators.backends.libtorch import libtorch_builder
from generators.dtypes import dtype_info
from generators.manifest import file_digests
from generators.variant import (
    Backend,
    DType,
    InitialState,
    StatePair,
    Strategy,
    Variant,
    backend_builds,
)
from tests.determinism_support import build_all_ways

VARIANT = Variant(backend=Backend.LIBTORCH, dtype=DType.FLOAT32, shape=(-1,), max_batch=8)
OTHER = Variant(backend=Backend.LIBTORCH, dtype=DType.OBJECT, shape=(1,), max_batch=0)
MULTI = Variant(backend=Backend.LIBTORCH, dtype=DType.INT32, shape=(1,), max_batch=0,
                initial_state=InitialState.FILE,
                state_pairs=(StatePair("INPUT_STATE", "OUTPUT_STATE"),
                             StatePair("INPUT_STATE_1", "OUTPUT_STATE_1")))
# State-coverage variants, each with a module of its own (TypedState, SumCountState,
# ScalarState, _Dyna1).
COVERAGE = {
    "boolean": Variant(backend=Backend.LIBTORCH, dtype=DType.BOOLEAN, shape=(1,), max_batch=8,
                       initial_state=InitialState.FILE),
    "wider": Variant(backend=Backend.LIBTORCH, dtype=DType.FLOAT16, shape=(1,), max_batch=0,
                     state_dtype=DType.FLOAT32),
    "sum_count": Variant(backend=Backend.LIBTORCH, dtype=DType.INT32, shape=(1,), max_batch=8,
                         initial_state=InitialState.ZERO, state_dims=(2,)),
    "scalar": Variant(backend=Backend.LIBTORCH, dtype=DType.INT32, shape=(1,), max_batch=0,
                      initial_state=InitialState.ZERO, state_dims=()),
    "dyna": Variant(backend=Backend.LIBTORCH, dtype=DType.INT32, shape=(1,), max_batch=8,
                    strategy=Strategy.OLDEST),
}
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
_WORKER_REQUESTS = [(VARIANT, "first"), (OTHER, "other"), (MULTI, "multi"), (VARIANT, "again"),
                    *[(variant, key) for key, variant in COVERAGE.items()]]


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
        """Every request gets a successful response."""
        self.assertEqual([r["exitCode"] for r in self.responses], [0] * len(_WORKER_REQUESTS),
                         self.responses)
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

    def test_coverage_modules_agree(self):
        """Each state-coverage model the worker built is this process's bytes too."""
        for key, variant in COVERAGE.items():
            with self.subTest(key):
                self.assertEqual(libtorch_builder.build_model(variant),
                                 (self.out / key / MODEL).read_bytes())

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


# What a state without an initial state holds at START (Triton hands over
# whatever its buffer held); the gated models must not add it.
_GARBAGE = 77


def _torch_type(dtype: DType) -> torch.dtype:
    """The torch dtype of a numpy-typed model dtype (BOOLEAN: bool)."""
    return torch.from_numpy(np.zeros(1, dtype_info(dtype).io_numpy)).dtype


def _load(variant: Variant) -> torch.jit.ScriptModule:
    """The variant's archive as the backend loads it."""
    return torch.jit.load(io.BytesIO(libtorch_builder.build_model(variant)))


class _Row:
    """One sequence slot of a batch, holding its running state."""

    def __init__(self, state: torch.Tensor) -> None:
        """A slot whose current state is `state` (shape without the batch dim)."""
        self.state = state


class CoverageContractTest(unittest.TestCase):
    """The state-coverage models answer the contract's literal values in-process."""

    def _step(self, variant: Variant, module, rows: Sequence[Tuple[_Row, List, bool, bool]]):
        """One execution: rows of (slot, INPUT elements, START, READY); returns OUTPUT rows.

        Batched models get batch-first tensors; each ready row's slot keeps
        the state the model hands back, as the backend's StateUpdate does.
        """
        control = dtype_info(variant.dtype).control_numpy
        data = torch.tensor([values for _, values, _, _ in rows], dtype=_torch_type(variant.dtype))
        state = torch.stack([row.state for row, _, _, _ in rows])
        start = torch.from_numpy(np.array([[s] for _, _, s, _ in rows], control))
        ready = torch.from_numpy(np.array([[r] for _, _, _, r in rows], control))
        if variant.max_batch == 0:
            data, state, start, ready = data[0], state[0], start[0], ready[0]
        inputs = [data, state, start, ready]
        if variant.dyna:  # END__4 and CORRID__5: any values
            inputs += [torch.zeros_like(start), torch.full(start.shape, 12345, dtype=torch.int64)]
        output, new_state = module(*inputs)
        state_type = _torch_type(variant.state_type)
        self.assertEqual((output.dtype, new_state.dtype), (state_type, state_type))
        if variant.max_batch == 0:
            output, new_state = output[None], new_state[None]
        for index, (row, _, _, is_ready) in enumerate(rows):
            if is_ready:
                row.state = new_state[index]
        return [output[index].tolist() for index in range(len(rows))]

    def _fresh(self, variant: Variant) -> torch.Tensor:
        """The state a slot gets at START: zeros, the file's value or garbage (-1 dims: 1)."""
        shape = variant.state_shape
        value = {InitialState.NONE: _GARBAGE, InitialState.ZERO: 0,
                 InitialState.FILE: 100}[variant.initial_state]
        if variant.state_type is DType.BOOLEAN:
            value = variant.initial_state is not InitialState.ZERO
        return torch.full(shape, value, dtype=_torch_type(variant.state_type))

    def _sequence(self, variant: Variant, values: Sequence, module=None) -> List:
        """One sequence alone (START on the first step); each step's OUTPUT row.

        A value is one element, or a list of them (a variable-shape request).
        """
        module = module or _load(variant)
        row = _Row(self._fresh(variant))
        answers = []
        for index, value in enumerate(values):
            elements = list(value) if isinstance(value, (list, tuple)) else [value]
            answers += self._step(variant, module, [(row, elements, index == 0, True)])
        return answers

    def _variant(self, dtype: DType, initial: InitialState = InitialState.NONE,
                 max_batch: int = 8, shape: Tuple[int, ...] = (1,),
                 state_dtype: Optional[DType] = None) -> Variant:
        """A libtorch variant (defaults: fixed [1], batched, no initial state)."""
        return Variant(backend=Backend.LIBTORCH, dtype=dtype, shape=shape, max_batch=max_batch,
                       initial_state=initial, state_dtype=state_dtype)

    def test_every_numeric_type_sums_in_its_own_type(self):
        """1, 2, 3, 4 -> 1, 3, 6, 10 (file: 101, 103, 106, 110), batched and not."""
        numeric = [d for d in DType if d not in (DType.OBJECT, DType.BOOL, DType.BOOLEAN)
                   and backend_builds(Backend.LIBTORCH, d, 8)]
        self.assertEqual(len(numeric), 8, numeric)
        want = {InitialState.NONE: [1, 3, 6, 10], InitialState.ZERO: [1, 3, 6, 10],
                InitialState.FILE: [101, 103, 106, 110]}
        for dtype in numeric:
            for initial, expected in want.items():
                for max_batch in (8, 0):
                    with self.subTest(dtype=dtype.value, initial=initial.value, batch=max_batch):
                        variant = self._variant(dtype, initial, max_batch)
                        self.assertEqual(self._sequence(variant, [1, 2, 3, 4]),
                                         [[v] for v in expected])

    def test_unserved_types_are_not_built(self):
        """The pytorch backend refuses BF16 and UINT16/32/64 at load: no such model."""
        for dtype in (DType.BFLOAT16, DType.UINT16, DType.UINT32, DType.UINT64):
            self.assertFalse(backend_builds(Backend.LIBTORCH, dtype, 8), dtype)

    def test_boolean_state_is_the_running_xor(self):
        """true, false, true, true -> true, true, false, true (file, starting true: f, f, t, f)."""
        sent = [True, False, True, True]
        want = {InitialState.NONE: [True, True, False, True],
                InitialState.ZERO: [True, True, False, True],
                InitialState.FILE: [False, False, True, False]}
        for initial, expected in want.items():
            for max_batch in (8, 0):
                with self.subTest(initial=initial.value, batch=max_batch):
                    variant = self._variant(DType.BOOLEAN, initial, max_batch)
                    self.assertEqual(self._sequence(variant, sent), [[v] for v in expected])

    def test_variable_width_three(self):
        """Width 3: [1, 2, 3] then [4, 5, 6] -> [1, 2, 3], [5, 7, 9]; the first state has width 1."""
        for dtype in (DType.INT8, DType.UINT8, DType.FLOAT16, DType.FLOAT64, DType.INT64):
            with self.subTest(dtype.value):
                variant = self._variant(dtype, shape=(-1,))
                self.assertEqual(self._sequence(variant, [[1, 2, 3], [4, 5, 6]]),
                                 [[1, 2, 3], [5, 7, 9]])
        boolean = self._variant(DType.BOOLEAN, shape=(-1,), max_batch=0)
        self.assertEqual(self._sequence(boolean, [[True, False, True], [True, True, False]]),
                         [[True, False, True], [False, True, True]])

    def test_interleaved_batch_with_padding(self):
        """Three sequences share executions with a padding row; each keeps its own sum."""
        for dtype in (DType.INT16, DType.FLOAT16, DType.UINT8):
            with self.subTest(dtype.value):
                variant = self._variant(dtype)
                module = _load(variant)
                a, b, c, pad = (_Row(self._fresh(variant)) for _ in range(4))
                first = self._step(variant, module, [(a, [1], True, True), (b, [2], True, True)])
                second = self._step(variant, module, [(a, [2], False, True), (pad, [9], False, False),
                                                      (c, [5], True, True)])
                third = self._step(variant, module, [(a, [3], False, True), (b, [3], False, True),
                                                     (c, [6], False, True)])
                self.assertEqual((first[0], first[1]), ([1], [2]))
                self.assertEqual((second[0], second[2]), ([3], [5]))
                self.assertEqual(third, [[6], [5], [11]])

    def test_boolean_interleaved_batch(self):
        """Two boolean sequences in one batch keep separate parities (file state: true)."""
        variant = self._variant(DType.BOOLEAN, InitialState.FILE)
        module = _load(variant)
        a, b = _Row(self._fresh(variant)), _Row(self._fresh(variant))
        answers = [self._step(variant, module, [(a, [x], i == 0, True), (b, [y], i == 0, True)])
                   for i, (x, y) in enumerate([(True, False), (False, False), (True, True)])]
        self.assertEqual(answers, [[[False], [True]], [[False], [True]], [[True], [False]]])

    def test_wider_states(self):
        """int32 INPUT keeps an int64 sum, float16 INPUT a float32 one: 1, 3, 6, 10 in the state's type."""
        for dtype, state_dtype in ((DType.INT32, DType.INT64), (DType.FLOAT16, DType.FLOAT32)):
            for max_batch in (8, 0):
                with self.subTest(dtype=dtype.value, batch=max_batch):
                    variant = self._variant(dtype, max_batch=max_batch, state_dtype=state_dtype)
                    self.assertEqual(self._sequence(variant, [1, 2, 3, 4]), [[1], [3], [6], [10]])

    def test_sum_count_state(self):
        """State [sum, count]: 1, 2, 3, 4 -> 101, 203, 306, 410; interleaved sequences apart."""
        for max_batch in (8, 0):
            variant = dataclasses.replace(COVERAGE["sum_count"], max_batch=max_batch)
            with self.subTest(batch=max_batch):
                self.assertEqual(self._sequence(variant, [1, 2, 3, 4]),
                                 [[101], [203], [306], [410]])
        variant = COVERAGE["sum_count"]
        module = _load(variant)
        a, b = _Row(self._fresh(variant)), _Row(self._fresh(variant))
        self._step(variant, module, [(a, [1], True, True)])
        answer = self._step(variant, module, [(a, [2], False, True), (b, [10], True, True)])
        self.assertEqual(answer, [[203], [110]])
        self.assertEqual((a.state.tolist(), b.state.tolist()), ([3, 2], [10, 1]))

    def test_scalar_state(self):
        """A dims [] state holds the running sum: 1, 3, 6, 10; its shape is [] ([B] batched)."""
        for max_batch in (8, 0):
            variant = dataclasses.replace(COVERAGE["scalar"], max_batch=max_batch)
            with self.subTest(batch=max_batch):
                module = _load(variant)
                row = _Row(self._fresh(variant))
                answers = [self._step(variant, module, [(row, [v], i == 0, True)])[0]
                           for i, v in enumerate([1, 2, 3, 4])]
                self.assertEqual(answers, [[1], [3], [6], [10]])
                self.assertEqual(row.state.shape, torch.Size([]))

    def test_dyna_ignores_end_and_corrid(self):
        """The oldest-strategy model takes END__4 and CORRID__5: 1, 3, 6, 10, batched and not."""
        for max_batch in (8, 0):
            variant = dataclasses.replace(COVERAGE["dyna"], max_batch=max_batch)
            with self.subTest(batch=max_batch):
                module = _load(variant)
                self.assertEqual(len(module.forward.schema.arguments) - 1, 6)
                self.assertEqual(self._sequence(variant, [1, 2, 3, 4], module=module),
                                 [[1], [3], [6], [10]])

    def test_same_buffer_models_are_upstreams(self):
        """use_same_buffer_for_input_output changes the config only: the model is upstream's."""
        for dtype in (DType.FLOAT32, DType.INT32):
            for max_batch in (8, 0):
                plain = self._variant(dtype, max_batch=max_batch)
                same = Variant(backend=Backend.LIBTORCH, dtype=dtype, shape=(1,),
                               max_batch=max_batch, same_buffer=True)
                self.assertEqual(libtorch_builder.build_model(same),
                                 libtorch_builder.build_model(plain))


if __name__ == "__main__":
    unittest.main()
