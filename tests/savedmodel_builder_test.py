"""Direct tests of generators/savedmodel_builder.py, without the simulator.

Models are built in this process, then driven with hand-written request
batches through tests/runners/savedmodel_runner.py, which feeds them the way
Triton's tensorflow backend does. The backend never updates INPUT_STATE, so
every request carries the value Triton injects at the start of a sequence:
garbage (no initial state; "" for strings), zero, or the file's 100 (200,
300 for the second and third state pair of a multi-state model).
Expected values are the contract's literals, never computed here.

Byte determinism and the written files are tested in
tests/savedmodel_determinism_test.py.

Run: `python -m unittest tests.savedmodel_builder_test` or as a script.
"""

import dataclasses
import pathlib
import shutil
import tempfile
import time
import unittest
from typing import Dict, List, Optional, Sequence
from unittest import mock

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import saved_model_pb2
from tritonclient.grpc import model_config_pb2

from generators import savedmodel_builder
from generators.build_options import BuildOptions
from generators.dtypes import dtype_info
from generators.model_config import parse_config
from generators.variant import Backend, DType, InitialState, StatePair, Variant
from generators.writer import write_model_dir
from tests.runners import savedmodel_runner

RNG = np.random.default_rng(20240601)
_TF_TYPES = {  # config data type -> TensorFlow DataType, as the backend maps them
    "TYPE_FP32": types_pb2.DT_FLOAT, "TYPE_INT32": types_pb2.DT_INT32,
    "TYPE_STRING": types_pb2.DT_STRING, "TYPE_BOOL": types_pb2.DT_BOOL,
    "TYPE_UINT64": types_pb2.DT_UINT64,
}
_CONTROL_TYPES = {"fp32_false_true": "TYPE_FP32", "int32_false_true": "TYPE_INT32",
                  "bool_false_true": "TYPE_BOOL"}


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
_ROOT_DIR: Optional[pathlib.Path] = None


def setUpModule() -> None:  # noqa: N802 - unittest's name
    """Build every test variant once, into a temporary directory."""
    global _ROOT_DIR
    _ROOT_DIR = pathlib.Path(tempfile.mkdtemp(prefix="savedmodel_builder_test."))
    for key, variant in VARIANTS.items():
        write_model_dir(variant, BuildOptions(), _ROOT_DIR / key)


def tearDownModule() -> None:  # noqa: N802 - unittest's name
    """Remove the built models."""
    shutil.rmtree(_ROOT_DIR, ignore_errors=True)


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
    if variant.initial_state is InitialState.FILE:
        return _data(variant, [_FILE_STATES[pair_index]] * rows, 1)
    if variant.dtype is DType.OBJECT:  # Triton zero-fills string states: ""
        return np.full((rows, 1), b"", dtype=object)
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


def _plain(values: np.ndarray) -> list:
    """Outputs as Python lists; strings as str."""
    if values.dtype == object:
        return [[v.decode() for v in row] for row in np.atleast_2d(values)]
    return np.atleast_2d(values).tolist()


class _ModelTestCase(unittest.TestCase):
    """Loads the prebuilt models; one runner (session) per test."""

    def model(self, key: str):
        """A fresh runner of a prebuilt model and its variant."""
        runner = savedmodel_runner.load(_ROOT_DIR / key)
        self.addCleanup(runner.close)
        return runner, VARIANTS[key]

    def step_outputs(self, model, slots, width=1) -> Dict[str, list]:
        """Run one execution of a (runner, variant); returns every output's rows."""
        runner, variant = model
        outputs = runner(make_inputs(variant, slots, width))
        self.assertEqual(set(outputs), {"OUTPUT", *(p.output for p in variant.state_pairs)})
        return {name: _plain(value) for name, value in outputs.items()}

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


def _type_name(data_type: int) -> str:
    """ModelConfig DataType enum value -> its name."""
    return model_config_pb2.DataType.Name(data_type)


def _control_type(control) -> str:
    """Config data type of a sequence control (typed, or from *_false_true)."""
    for field, type_name in _CONTROL_TYPES.items():
        if getattr(control, field):
            return type_name
    return _type_name(control.data_type)


class SignatureTest(unittest.TestCase):
    """What Triton's tensorflow backend checks when it loads a SavedModel."""

    def _check(self, model_dir: pathlib.Path) -> None:
        config = parse_config((model_dir / "config.pbtxt").read_text())
        saved = saved_model_pb2.SavedModel.FromString(
            (model_dir / "1" / "model.savedmodel" / "saved_model.pb").read_bytes())
        graph = saved.meta_graphs[0]
        signature = graph.signature_def["serving_default"]
        batch = [-1] if config.max_batch_size > 0 else []
        controls = {c.name: c.control[0] for c in config.sequence_batching.control_input}
        # Signature inputs = config inputs + sequence controls; states do not count.
        self.assertEqual(set(signature.inputs), {"INPUT", *controls})
        for name, control in controls.items():
            spec = signature.inputs[name]
            self.assertEqual([d.size for d in spec.tensor_shape.dim], batch + [1], name)
            self.assertEqual(spec.dtype, _TF_TYPES[_control_type(control)], name)
        spec = signature.inputs["INPUT"]
        dims = [d.size for d in spec.tensor_shape.dim]
        self.assertEqual(dims, batch + list(config.input[0].dims))
        self.assertEqual(spec.dtype, _TF_TYPES[_type_name(config.input[0].data_type)])
        for output in config.output:  # compared exactly
            spec = signature.outputs[output.name]
            self.assertEqual([d.size for d in spec.tensor_shape.dim], batch + list(output.dims))
            self.assertEqual(spec.dtype, _TF_TYPES[_type_name(output.data_type)])
        states = config.sequence_batching.state
        self.assertEqual(set(signature.outputs), {"OUTPUT", *(s.output_name for s in states)})
        for state in states:
            self._check_state(graph, signature, state, batch)

    def _check_state(self, graph, signature, state, batch: list) -> None:
        """A state input is fed by its raw name: a placeholder the call consumes."""
        node = next(n for n in graph.graph_def.node if n.name == state.input_name)
        self.assertEqual(node.op, "Placeholder")
        self.assertEqual(node.attr["dtype"].type, _TF_TYPES[_type_name(state.data_type)])
        self.assertTrue(any(state.input_name in n.input for n in graph.graph_def.node))
        spec = signature.outputs[state.output_name]
        self.assertEqual([d.size for d in spec.tensor_shape.dim], batch + list(state.dims))
        self.assertEqual(spec.dtype, _TF_TYPES[_type_name(state.data_type)])

    def test_every_variant_passes_the_backend_load_checks(self):
        """Input count, control shapes and types, exact output dims, state input feeds."""
        for key in VARIANTS:
            with self.subTest(key):
                self._check(_ROOT_DIR / key)


class SequenceTest(_ModelTestCase):
    """Running sums kept inside the model, per correlation id."""

    def test_simple_sequence(self):
        """test_simple_sequence: 1..9 -> 45."""
        self.assertEqual(self.sequence("int32", range(1, 10))[-1], [45])

    def test_interleaved_sequences_with_null_rows(self):
        """test_half_batch plus a third sequence, null rows and moved slots."""
        model = self.model("int32")
        steps = [
            [Req(987, 1, start=True), Req(988, 0, start=True), None, None],
            [Req(987, 2), Req(988, 9), None, Req(1003, 111, start=True)],
            # Rows may sit in any slot: the model keys on CORRID, not position.
            [Req(988, 5), Req(987, 3), None, Req(1003, 113, end=True)],
            [Req(987, 4, end=True), Req(988, 13, end=True), None, None],
        ]
        outputs = [self.step(model, slots) for slots in steps]
        self.assertEqual([outputs[0][0], outputs[1][0], outputs[2][1], outputs[3][0]],
                         [[1], [3], [6], [10]])
        self.assertEqual([outputs[0][1], outputs[1][1], outputs[2][0], outputs[3][1]],
                         [[0], [9], [14], [27]])
        self.assertEqual([outputs[1][3], outputs[2][3]], [[111], [224]])

    def test_null_requests_touch_no_state(self):
        """READY=0 rows neither read, reset nor drop a live sequence."""
        model = self.model("int32")
        self.assertEqual(self.step(model, [Req(5, 1, start=True), None])[0], [1])
        # A not-ready row, even one carrying a live id and START/END flags.
        null = make_inputs(model[1], [None, None])
        null["CORRID"][1] = 5
        null["START"][1] = null["END"][1] = 1
        model[0](null)
        self.assertEqual(self.step(model, [None, Req(5, 2, end=True)])[1], [3])

    def test_start_mid_sequence_resets(self):
        """test_no_sequence_end: 1, 2, 42 (start), 9 -> 51."""
        values = [Req(4566, 1, start=True), Req(4566, 2), Req(4566, 42, start=True),
                  Req(4566, 9, end=True)]
        model = self.model("int32_nobatch")
        self.assertEqual([self.step(model, [r])[0] for r in values], [[1], [3], [42], [51]])

    def test_end_drops_the_state_and_the_id_can_start_again(self):
        """1, 3 -> 4; END forgets; 11111, 11113 -> 22224."""
        model = self.model("int32")
        first = [Req(1001, 1, start=True), Req(1001, 3, end=True)]
        again = [Req(1001, 11111, start=True), Req(1001, 11113, end=True)]
        self.assertEqual([self.step(model, [r])[0] for r in first], [[1], [4]])
        # Nothing kept after END: a request without START starts from zero.
        self.assertEqual(self.step(model, [Req(1001, 7)])[0], [7])
        self.assertEqual([self.step(model, [r])[0] for r in again], [[11111], [22224]])

    def test_length_one_sequence(self):
        """START+END 42 -> 42, leaving nothing stored."""
        model = self.model("int32_nobatch")
        self.assertEqual(self.step(model, [Req(99, 42, start=True, end=True)])[0], [42])
        self.assertEqual(self.step(model, [Req(99, 5)])[0], [5])

    def test_ragged_widths(self):
        """test_ragged_batch: widths 2, 2, 1, 3 -> 6, 36, 336, 3336 element-wise."""
        model = self.model("int32_variable")
        outputs = {1001: [], 1002: [], 1003: [], 1004: []}
        for step in range(3):
            flags = {"start": step == 0, "end": step == 2}
            pair = self.step(model, [Req(1001, 1 + step, **flags), Req(1002, 11 + step, **flags),
                                     None, None], width=2)
            single = self.step(model, [None, None, Req(1003, 111 + step, **flags), None], width=1)
            triple = self.step(model, [None, None, None, Req(1004, 1111 + step, **flags)], width=3)
            for corrid, row in ((1001, pair[0]), (1002, pair[1]), (1003, single[2]),
                                (1004, triple[3])):
                outputs[corrid].append(row)
        self.assertEqual(outputs[1001], [[1, 1], [3, 3], [6, 6]])
        self.assertEqual(outputs[1002], [[11, 11], [23, 23], [36, 36]])
        self.assertEqual(outputs[1003], [[111], [223], [336]])
        self.assertEqual(outputs[1004], [[1111] * 3, [2223] * 3, [3336] * 3])

    def test_float_garbage_state_does_not_leak(self):
        """A NaN INPUT_STATE (uninitialized memory) never reaches OUTPUT."""
        self.assertEqual(self.sequence("float32", [1, 2, 3, 4]), [[1.0], [3.0], [6.0], [10.0]])

    def test_bool_model_with_bool_controls(self):
        """Bool models: int32 data, bool controls; 1..9 -> 45."""
        self.assertEqual(self.sequence("bool", range(1, 10))[-1], [45])


class StringTest(_ModelTestCase):
    """Strings accumulate numerically: OUTPUT is the decimal running sum."""

    def test_strings_accumulate(self):
        """1..9 as strings -> the decimal running sums, "45" last."""
        self.assertEqual(self.sequence("object", range(1, 10)),
                         [["1"], ["3"], ["6"], ["10"], ["15"], ["21"], ["28"], ["36"], ["45"]])

    def test_unparsable_null_rows_are_ignored(self):
        """Null rows' non-numeric strings do not fail the batch."""
        model = self.model("object")
        inputs = make_inputs(model[1], [Req(7, 5, start=True), None, None])
        self.assertEqual(set(inputs["INPUT"][1:, 0]), {b"junk"})
        self.assertEqual(_plain(model[0](inputs)["OUTPUT"])[0], ["5"])


class InitialStateTest(_ModelTestCase):
    """Zero and file initial states; INPUT_STATE stays at its initial value."""

    def test_zero_numeric(self):
        """Zero initial state: 1, 2, 3, 4 -> 1, 3, 6, 10."""
        self.assertEqual(self.sequence("bool_nobatch_zero", [1, 2, 3, 4]),
                         [[1], [3], [6], [10]])

    def test_zero_string(self):
        """Zero (empty-string) initial state: "1", "3", "6", "10"."""
        self.assertEqual(self.sequence("object_nobatch_zero", [1, 2, 3, 4]),
                         [["1"], ["3"], ["6"], ["10"]])

    def test_file_int32(self):
        """File initial state 100, passed on every step: 101, 103, 106, 110."""
        self.assertEqual(self.sequence("int32_file", [1, 2, 3, 4]),
                         [[101], [103], [106], [110]])

    def test_file_float32_nobatch(self):
        """The same for float32 without batching."""
        self.assertEqual(self.sequence("float32_nobatch_file", [1, 2, 3, 4]),
                         [[101.0], [103.0], [106.0], [110.0]])

    def test_file_string_variable_width(self):
        """String file state "100" broadcast to width 2: "101" .. "110"."""
        self.assertEqual(self.sequence("object_variable_file", [1, 2, 3, 4], width=2),
                         [["101"] * 2, ["103"] * 2, ["106"] * 2, ["110"] * 2])


class StateUpdatingBackendTest(_ModelTestCase):
    """On a backend that feeds OUTPUT_STATE back as INPUT_STATE, same answers."""

    def _run(self, key: str) -> list:
        runner, variant = self.model(key)
        state, rows = None, []
        for index, value in enumerate([1, 2, 3, 4]):
            inputs = make_inputs(variant, [Req(5, value, start=index == 0, end=index == 3)])
            if state is not None:
                inputs["INPUT_STATE"] = state
            outputs = runner(inputs)
            state, rows = outputs["OUTPUT_STATE"], rows + [_plain(outputs["OUTPUT"])[0]]
        return rows

    def test_no_initial_state(self):
        """INPUT_STATE = previous OUTPUT_STATE: still 1, 3, 6, 10."""
        self.assertEqual(self._run("int32"), [[1], [3], [6], [10]])

    def test_file_initial_state(self):
        """INPUT_STATE = 100, then previous OUTPUT_STATE: 101 .. 110."""
        self.assertEqual(self._run("int32_file"), [[101], [103], [106], [110]])


class MultiStateTest(_ModelTestCase):
    """Several state pairs: pair k adds (k + 1) * INPUT, OUTPUT is the sum."""

    def test_two_pairs_no_initial_state(self):
        """1, 2, 3, 4: pairs 1, 3, 6, 10 and 2, 6, 12, 20; OUTPUT 3, 9, 18, 30."""
        self.assertEqual(self.sequence_outputs("int32_states2", [1, 2, 3, 4]), {
            "OUTPUT": [[3], [9], [18], [30]],
            "OUTPUT_STATE": [[1], [3], [6], [10]],
            "OUTPUT_STATE_1": [[2], [6], [12], [20]],
        })

    def test_two_pairs_file(self):
        """Files 100, 200: pairs 101 .. 110 and 202 .. 220; OUTPUT 303 .. 330."""
        self.assertEqual(self.sequence_outputs("float32_states2_file", [1, 2, 3, 4]), {
            "OUTPUT": [[303.0], [309.0], [318.0], [330.0]],
            "OUTPUT_STATE": [[101.0], [103.0], [106.0], [110.0]],
            "OUTPUT_STATE_1": [[202.0], [206.0], [212.0], [220.0]],
        })

    def test_three_pairs_no_initial_state_nobatch(self):
        """Three pairs, float NaN garbage states: OUTPUT 6, 18, 36, 60."""
        self.assertEqual(self.sequence_outputs("float32_nobatch_states3", [1, 2, 3, 4]), {
            "OUTPUT": [[6.0], [18.0], [36.0], [60.0]],
            "OUTPUT_STATE": [[1.0], [3.0], [6.0], [10.0]],
            "OUTPUT_STATE_1": [[2.0], [6.0], [12.0], [20.0]],
            "OUTPUT_STATE_2": [[3.0], [9.0], [18.0], [30.0]],
        })

    def test_three_pairs_file_nobatch(self):
        """Files 100, 200, 300: OUTPUT 606, 618, 636, 660."""
        self.assertEqual(self.sequence_outputs("int32_nobatch_states3_file", [1, 2, 3, 4]), {
            "OUTPUT": [[606], [618], [636], [660]],
            "OUTPUT_STATE": [[101], [103], [106], [110]],
            "OUTPUT_STATE_1": [[202], [206], [212], [220]],
            "OUTPUT_STATE_2": [[303], [309], [318], [330]],
        })

    def test_start_mid_sequence_resets_every_pair(self):
        """1, 2, 42 (start), 9: OUTPUT 6, 18, 252, 306."""
        model = self.model("float32_nobatch_states3")
        values = [Req(4566, 1, start=True), Req(4566, 2), Req(4566, 42, start=True),
                  Req(4566, 9, end=True)]
        outputs = [self.step_outputs(model, [r]) for r in values]
        self.assertEqual([o["OUTPUT"][0] for o in outputs], [[6.0], [18.0], [252.0], [306.0]])
        self.assertEqual([o["OUTPUT_STATE_2"][0] for o in outputs],
                         [[3.0], [9.0], [126.0], [153.0]])

    def test_interleaved_sequences_with_null_rows(self):
        """Three sequences in moving slots, null rows (one carrying a live id) between."""
        model = self.model("int32_states2")
        steps = [
            [Req(987, 1, start=True), Req(988, 0, start=True), None, None],
            [Req(987, 2), Req(988, 9), None, Req(1003, 111, start=True)],
            [Req(988, 5), Req(987, 3), None, Req(1003, 113, end=True)],
            [Req(987, 4, end=True), Req(988, 13, end=True), None, None],
        ]
        outputs = []
        for slots in steps:
            outputs.append(self.step_outputs(model, slots))
            null = make_inputs(model[1], [None, None])  # READY=0 with a live id and flags
            null["CORRID"][:] = 988
            null["START"][:] = null["END"][:] = 1
            model[0](null)
        rows = {987: (0, 0, 1, 0), 988: (1, 1, 0, 1), 1003: (None, 3, 3, None)}

        def picked(corrid, name):
            return [out[name][row] for out, row in zip(outputs, rows[corrid], strict=True)
                    if row is not None]

        self.assertEqual(picked(987, "OUTPUT"), [[3], [9], [18], [30]])
        self.assertEqual(picked(987, "OUTPUT_STATE"), [[1], [3], [6], [10]])
        self.assertEqual(picked(987, "OUTPUT_STATE_1"), [[2], [6], [12], [20]])
        self.assertEqual(picked(988, "OUTPUT"), [[0], [27], [42], [81]])
        self.assertEqual(picked(988, "OUTPUT_STATE"), [[0], [9], [14], [27]])
        self.assertEqual(picked(988, "OUTPUT_STATE_1"), [[0], [18], [28], [54]])
        self.assertEqual(picked(1003, "OUTPUT"), [[333], [672]])
        self.assertEqual(picked(1003, "OUTPUT_STATE_1"), [[222], [448]])

    def test_state_updating_backend(self):
        """Each state output fed back as its pair's input: still 606 .. 660."""
        runner, variant = self.model("int32_nobatch_states3_file")
        fed, totals = {}, []
        for index, value in enumerate([1, 2, 3, 4]):
            inputs = make_inputs(variant, [Req(5, value, start=index == 0, end=index == 3)])
            outputs = runner({**inputs, **fed})
            fed = {pair.input: outputs[pair.output] for pair in variant.state_pairs}
            totals.append(_plain(outputs["OUTPUT"])[0])
        self.assertEqual(totals, [[606], [618], [636], [660]])


class EvictionTest(_ModelTestCase):
    """Sequences that never send END are forgotten once idle too long."""

    def test_idle_sequences_are_forgotten(self):
        """Idle 2.4 s > 2 s: forgotten (7 -> 2); idle 1.2 s: kept (8 -> 6)."""
        model_dir = pathlib.Path(tempfile.mkdtemp(prefix="savedmodel_eviction."))
        self.addCleanup(shutil.rmtree, model_dir, ignore_errors=True)
        with mock.patch.object(savedmodel_builder, "EVICT_AFTER_SECONDS", 2.0):
            write_model_dir(VARIANTS["int32"], BuildOptions(), model_dir / "model")
        runner = savedmodel_runner.load(model_dir / "model")
        self.addCleanup(runner.close)
        model = (runner, VARIANTS["int32"])
        self.assertEqual(self.step(model, [Req(7, 1, start=True), Req(8, 1, start=True)]),
                         [[1], [1]])
        time.sleep(1.2)
        self.assertEqual(self.step(model, [None, Req(8, 2)]), [[0], [3]])
        time.sleep(1.2)
        self.assertEqual(self.step(model, [Req(7, 2), Req(8, 3)]), [[2], [6]])


class EagerLoadTest(unittest.TestCase):
    """`tf.saved_model.load` also works; its signature keeps all six inputs."""

    def test_two_models_in_one_process_keep_separate_state(self):
        """Same CORRID on two eagerly loaded models: 10 and 110."""
        models = {key: tf.saved_model.load(str(_ROOT_DIR / key / "1" / "model.savedmodel"))
                  for key in ("int32", "int32_file")}
        signatures = {key: m.signatures["serving_default"] for key, m in models.items()}
        for signature in signatures.values():
            self.assertEqual(set(signature.structured_input_signature[1]),
                             {"INPUT", "INPUT_STATE", "START", "END", "READY", "CORRID"})
        last = {}
        for index, value in enumerate([1, 2, 3, 4]):
            for key, signature in signatures.items():
                inputs = make_inputs(VARIANTS[key], [Req(5, value, start=index == 0,
                                                         end=index == 3)])
                last[key] = signature(**inputs)["OUTPUT"].numpy().tolist()
        self.assertEqual(last, {"int32": [[10]], "int32_file": [[110]]})

    def test_multi_state_signature_keeps_every_state_input(self):
        """Two pairs, eagerly loaded: seven inputs; 1, 2, 3, 4 -> OUTPUT 30."""
        model = tf.saved_model.load(str(_ROOT_DIR / "int32_states2" / "1" / "model.savedmodel"))
        signature = model.signatures["serving_default"]
        self.assertEqual(set(signature.structured_input_signature[1]),
                         {"INPUT", "INPUT_STATE", "INPUT_STATE_1", "START", "END", "READY",
                          "CORRID"})
        for index, value in enumerate([1, 2, 3, 4]):
            inputs = make_inputs(VARIANTS["int32_states2"],
                                 [Req(5, value, start=index == 0, end=index == 3)])
            outputs = {k: v.numpy().tolist() for k, v in signature(**inputs).items()}
        self.assertEqual(outputs, {"OUTPUT": [[30]], "OUTPUT_STATE": [[10]],
                                   "OUTPUT_STATE_1": [[20]]})


if __name__ == "__main__":
    unittest.main()
