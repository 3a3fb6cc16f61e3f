"""Shared helpers of the SavedModel builder tests, which run without the simulator.

Models are built in the test's process, then driven with hand-written request
batches through tests/runners/savedmodel_runner.py, which feeds them the way
Triton's tensorflow backend does. The backend never updates INPUT_STATE, so
every request carries the value Triton injects at the start of a sequence:
garbage (no initial state), zero, or the file's 100 (200, 300 for the second
and third state pair of a multi-state model; true for a boolean state) in
the state's dtype and dims; strings always "" (Triton core zeroes every
string state, file or not).

Each test module builds the variants it uses once (`BuiltModels`, from its
setUpModule) and runs them through a `ModelTestCase`. Used by
tests/savedmodel_builder_test.py and tests/savedmodel_multi_state_test.py.
"""

import dataclasses
import pathlib
import shutil
import tempfile
import unittest
from typing import Dict, Iterable, List, Optional, Sequence

import numpy as np

from generators.build_options import BuildOptions
from generators.dtypes import dtype_info
from generators.variant import Backend, DType, InitialState, StatePair, Strategy, Variant
from generators.writer import write_model_dir
from tests.runners import savedmodel_runner

RNG = np.random.default_rng(20240601)

_PAIRS = tuple(StatePair(f"INPUT_STATE{s}", f"OUTPUT_STATE{s}") for s in ("", "_1", "_2"))
# What Triton injects as pair k's state input with a file initial state.
_FILE_STATES = (100, 200, 300)


def _variant(dtype: str, shape=(1,), max_batch: int = 8, initial: str = "none",
             pairs: int = 1, **options) -> Variant:
    """A savedmodel variant; `options` are the state-coverage fields (state_dtype, ...)."""
    return Variant(backend=Backend.SAVEDMODEL, dtype=DType(dtype), shape=tuple(shape),
                   max_batch=max_batch, initial_state=InitialState(initial),
                   state_pairs=_PAIRS[:pairs], **options)


VARIANTS = {
    "int32": _variant("int32"),
    "int32_nobatch": _variant("int32", max_batch=0),
    "int32_variable": _variant("int32", shape=(-1,)),
    "int32_file": _variant("int32", initial="file"),
    "float32": _variant("float32"),
    "float32_nobatch_file": _variant("float32", max_batch=0, initial="file"),
    "object": _variant("object"),
    "object_nobatch_zero": _variant("object", max_batch=0, initial="zero"),
    "object_variable_file": _variant("object", shape=(-1,), initial="file"),
    "bool": _variant("bool"),
    "bool_nobatch_zero": _variant("bool", max_batch=0, initial="zero"),
    "int32_states2": _variant("int32", pairs=2),
    "float32_states2_file": _variant("float32", initial="file", pairs=2),
    "int32_nobatch_states3_file": _variant("int32", max_batch=0, initial="file", pairs=3),
    "float32_nobatch_states3": _variant("float32", max_batch=0, pairs=3),
    # The state-coverage repositories: every state dtype, wider and shaped
    # states, the single-buffer option and the oldest strategy.
    "boolean": _variant("boolean"),
    "boolean_file": _variant("boolean", initial="file"),
    "boolean_nobatch_variable": _variant("boolean", shape=(-1,), max_batch=0),
    "int8_file": _variant("int8", initial="file"),
    "int16_variable": _variant("int16", shape=(-1,)),
    "int64_nobatch": _variant("int64", max_batch=0),
    "uint8_zero": _variant("uint8", initial="zero"),
    "uint16_nobatch_variable": _variant("uint16", shape=(-1,), max_batch=0),
    "uint32_file": _variant("uint32", initial="file"),
    "uint64": _variant("uint64"),
    "float16_zero": _variant("float16", initial="zero"),
    "float64_variable": _variant("float64", shape=(-1,)),
    "int32_state_int64": _variant("int32", state_dtype=DType.INT64),
    "float16_nobatch_state_float32": _variant("float16", max_batch=0,
                                              state_dtype=DType.FLOAT32),
    "int32_sum_count": _variant("int32", initial="zero", state_dims=(2,)),
    "int32_nobatch_sum_count": _variant("int32", max_batch=0, initial="zero", state_dims=(2,)),
    "int32_scalar": _variant("int32", initial="zero", state_dims=()),
    "int32_nobatch_scalar": _variant("int32", max_batch=0, initial="zero", state_dims=()),
    "float32_same_buffer": _variant("float32", same_buffer=True),
    "int32_dyna": _variant("int32", strategy=Strategy.OLDEST),
}


class BuiltModels:
    """Some of VARIANTS, built once per test module into a temporary directory.

    A test module creates one, calls `build` from setUpModule and `remove`
    from tearDownModule.
    """

    def __init__(self, prefix: str, keys: Iterable[str]) -> None:
        self._prefix = prefix
        self.keys = tuple(keys)
        unknown = set(self.keys) - set(VARIANTS)
        if unknown:
            raise KeyError(f"not in VARIANTS: {sorted(unknown)}")
        self._root: Optional[pathlib.Path] = None

    def build(self) -> None:
        """Build every variant of `keys` into a fresh temporary directory."""
        self._root = pathlib.Path(tempfile.mkdtemp(prefix=self._prefix))
        for key in self.keys:
            write_model_dir(VARIANTS[key], BuildOptions(), self._root / key)

    def remove(self) -> None:
        """Remove the built models."""
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None

    def path(self, key: str) -> pathlib.Path:
        """The model directory (config.pbtxt, 1/model.savedmodel) of a built variant."""
        if self._root is None or key not in self.keys:
            raise KeyError(f"{key} is not built; add it to this module's BuiltModels")
        return self._root / key


@dataclasses.dataclass(frozen=True)
class Req:
    """One sequence's request in a batch slot: CORRID, value and flags."""

    corrid: int
    value: object
    start: bool = False
    end: bool = False


def _row(value, width: int) -> list:
    """One row of INPUT: a list gives each element, a scalar fills `width` elements."""
    return list(value) if isinstance(value, (list, tuple)) else [value] * width


def _data(variant: Variant, values: Sequence, width: int) -> np.ndarray:
    if variant.dtype is DType.OBJECT:
        return np.array([[str(v).encode() for v in _row(value, width)] for value in values],
                        dtype=object)
    return np.array([_row(value, width) for value in values],
                    dtype=dtype_info(variant.dtype).io_numpy)


def _garbage(dtype: DType, shape: Sequence[int]) -> np.ndarray:
    """What uninitialized memory or a null request may hold, as a `dtype` array."""
    if dtype is DType.OBJECT:
        return np.full(shape, b"junk", dtype=object)
    numpy_type = np.dtype(dtype_info(dtype).io_numpy)
    if numpy_type.kind == "f":
        return np.full(shape, np.nan, dtype=numpy_type)
    if numpy_type.kind == "b":
        return RNG.integers(0, 2, size=shape).astype(bool)
    limits = np.iinfo(numpy_type)
    return RNG.integers(limits.min, limits.max, size=shape, dtype=numpy_type, endpoint=True)


def _injected_state(variant: Variant, rows: int, pair_index: int = 0) -> np.ndarray:
    """A state input as Triton's tensorflow backend passes it on every request.

    Its dtype and dims are the state's ([rows, 2] for a sum-count state,
    [rows] for a scalar one).
    """
    shape = (rows, *variant.state_shape)
    dtype = variant.state_type
    if dtype is DType.OBJECT:  # Triton zeroes string states, file ones too: ""
        return np.full(shape, b"", dtype=object)
    numpy_type = dtype_info(dtype).io_numpy
    if variant.initial_state is InitialState.FILE:
        value = True if dtype is DType.BOOLEAN else _FILE_STATES[pair_index]
        return np.full(shape, value, dtype=numpy_type)
    if variant.initial_state is InitialState.ZERO:
        return np.zeros(shape, dtype=numpy_type)
    return _garbage(dtype, shape)


def make_inputs(variant: Variant, slots: List[Optional[Req]], width: int = 1) -> Dict:
    """The input tensors of one execution; None slots are null requests."""
    control = dtype_info(variant.dtype).control_numpy
    real = [slot or Req(0, 0) for slot in slots]
    data = _data(variant, [r.value for r in real], width)
    nulls = np.array([slot is None for slot in slots])
    data[nulls] = _garbage(variant.dtype, (int(nulls.sum()), data.shape[1]))

    def flags(values):
        return np.array(values, dtype=control).reshape(-1, 1)

    inputs = {"INPUT": data}
    for index, pair in enumerate(variant.state_pairs):
        inputs[pair.input] = _injected_state(variant, len(slots), index)
    inputs.update({
        "START": flags([bool(s and s.start) for s in slots]),
        "END": flags([bool(s and s.end) for s in slots]),
        "READY": flags([s is not None for s in slots]),
        "CORRID": np.array([s.corrid if s else 0 for s in slots], dtype=np.uint64).reshape(-1, 1),
    })
    if variant.max_batch == 0:
        inputs = {name: value[0] for name, value in inputs.items()}
    return inputs


def plain(values: np.ndarray) -> list:
    """Outputs as Python lists; strings as str."""
    if values.dtype == object:
        return [[v.decode() for v in row] for row in np.atleast_2d(values)]
    return np.atleast_2d(values).tolist()


def _rows(values: np.ndarray, batched: bool) -> list:
    """An output's rows as flat Python lists: one per batch slot, or one without batching."""
    return plain(values.reshape(values.shape[0] if batched else 1, -1))


def _output_is_state(variant: Variant) -> bool:
    """Whether OUTPUT equals OUTPUT_STATE (one state pair shaped like INPUT)."""
    return not variant.multi_state and variant.state_dims is None


class ModelTestCase(unittest.TestCase):
    """Loads the prebuilt models of `models`; one runner (session) per test."""

    models: BuiltModels  # set by each test module's base class

    def model(self, key: str):
        """A fresh runner of a prebuilt model and its variant."""
        runner = savedmodel_runner.load(self.models.path(key))
        self.addCleanup(runner.close)
        return runner, VARIANTS[key]

    def step_outputs(self, model, slots, width=1) -> Dict[str, list]:
        """Run one execution of a (runner, variant); returns every output's rows."""
        runner, variant = model
        outputs = runner(make_inputs(variant, slots, width))
        self.assertEqual(set(outputs), {"OUTPUT", *(p.output for p in variant.state_pairs)})
        return {name: _rows(value, variant.max_batch > 0) for name, value in outputs.items()}

    def step(self, model, slots, width=1) -> list:
        """Run one execution; returns OUTPUT rows (single state: equal to OUTPUT_STATE's)."""
        outputs = self.step_outputs(model, slots, width)
        if _output_is_state(model[1]):
            self.assertEqual(outputs["OUTPUT"], outputs["OUTPUT_STATE"])
        return outputs["OUTPUT"]

    def sequence_outputs(self, key: str, values, corrid: int = 5, width: int = 1) -> Dict:
        """One sequence in slot 0 (START first, END last); each output's row 0 per step."""
        model = self.model(key)
        last = len(values) - 1
        slots = [None] * max(1, model[1].max_batch // 2)
        rows: Dict[str, list] = {}
        for index, value in enumerate(values):
            slots[0] = Req(corrid, value, start=index == 0, end=index == last)
            outputs = self.step_outputs(model, slots, width)
            if _output_is_state(model[1]):
                self.assertEqual(outputs["OUTPUT"], outputs["OUTPUT_STATE"])
            for name, output in outputs.items():
                rows.setdefault(name, []).append(output[0])
        return rows

    def sequence(self, key: str, values, corrid: int = 5, width: int = 1) -> list:
        """One sequence in slot 0 (START first, END last); each step's OUTPUT row 0."""
        return self.sequence_outputs(key, values, corrid, width)["OUTPUT"]
