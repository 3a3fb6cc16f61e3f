"""Shared helpers of the SavedModel builder tests, which run without the simulator.

Models are built in the test's process, then driven with hand-written request
batches through tests/runners/savedmodel_runner.py, which feeds them the way
Triton's tensorflow backend does. The backend never updates INPUT_STATE, so
every request carries the value Triton injects at the start of a sequence:
garbage (no initial state), zero, or the file's 100 (200, 300 for the second
and third state pair of a multi-state model); strings always "" (Triton core
zeroes every string state, file or not).

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
from generators.variant import Backend, DType, InitialState, StatePair, Variant
from generators.writer import write_model_dir
from tests.runners import savedmodel_runner

RNG = np.random.default_rng(20240601)

_PAIRS = tuple(StatePair(f"INPUT_STATE{s}", f"OUTPUT_STATE{s}") for s in ("", "_1", "_2"))
# What Triton injects as pair k's state input with a file initial state.
_FILE_STATES = (100, 200, 300)


def _variant(dtype: str, shape=(1,), max_batch: int = 8, initial: str = "none",
             pairs: int = 1) -> Variant:
    return Variant(backend=Backend.SAVEDMODEL, dtype=DType(dtype), shape=tuple(shape),
                   max_batch=max_batch, initial_state=InitialState(initial),
                   state_pairs=_PAIRS[:pairs])


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


def _data(variant: Variant, values: Sequence, width: int) -> np.ndarray:
    if variant.dtype is DType.OBJECT:
        return np.array([[str(v).encode()] * width for v in values], dtype=object)
    return np.array([[v] * width for v in values], dtype=dtype_info(variant.dtype).io_numpy)


def _garbage(variant: Variant, rows: int, width: int) -> np.ndarray:
    """What uninitialized memory or a null request may hold."""
    if variant.dtype is DType.OBJECT:
        return np.full((rows, width), b"junk", dtype=object)
    if variant.dtype is DType.FLOAT32:
        return np.full((rows, width), np.nan, dtype=np.float32)
    return RNG.integers(-2**31, 2**31 - 1, size=(rows, width), dtype=np.int32)


def _injected_state(variant: Variant, rows: int, pair_index: int = 0) -> np.ndarray:
    """A state input as Triton's tensorflow backend passes it on every request."""
    if variant.dtype is DType.OBJECT:  # Triton zeroes string states, file ones too: ""
        return np.full((rows, 1), b"", dtype=object)
    if variant.initial_state is InitialState.FILE:
        return _data(variant, [_FILE_STATES[pair_index]] * rows, 1)
    if variant.initial_state is InitialState.ZERO:
        return _data(variant, [0] * rows, 1)
    return _garbage(variant, rows, 1)


def make_inputs(variant: Variant, slots: List[Optional[Req]], width: int = 1) -> Dict:
    """The input tensors of one execution; None slots are null requests."""
    control = dtype_info(variant.dtype).control_numpy
    real = [slot or Req(0, 0) for slot in slots]
    data = _data(variant, [r.value for r in real], width)
    nulls = np.array([slot is None for slot in slots])
    data[nulls] = _garbage(variant, int(nulls.sum()), width)

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
        return {name: plain(value) for name, value in outputs.items()}

    def step(self, model, slots, width=1) -> list:
        """Run one execution; returns OUTPUT rows (single state: equal to OUTPUT_STATE's)."""
        outputs = self.step_outputs(model, slots, width)
        if not model[1].multi_state:
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
            if not model[1].multi_state:
                self.assertEqual(outputs["OUTPUT"], outputs["OUTPUT_STATE"])
            for name, output in outputs.items():
                rows.setdefault(name, []).append(output[0])
        return rows

    def sequence(self, key: str, values, corrid: int = 5, width: int = 1) -> list:
        """One sequence in slot 0 (START first, END last); each step's OUTPUT row 0."""
        return self.sequence_outputs(key, values, corrid, width)["OUTPUT"]
