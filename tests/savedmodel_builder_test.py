"""Direct tests of generators/backends/savedmodel/savedmodel_builder.py, without the simulator.

Models are built in this process, then driven with hand-written request
batches through tests/runners/savedmodel_runner.py, which feeds them the way
Triton's tensorflow backend does (the helpers and the injected state values
are in tests/savedmodel_support.py). Expected values are the contract's
literals, never computed here.

Multi-state models' sums are tested in tests/savedmodel_multi_state_test.py;
byte determinism and the written files in tests/savedmodel_determinism_test.py.

Run: `python -m unittest tests.savedmodel_builder_test` or as a script.
"""

import pathlib
import shutil
import tempfile
import time
import unittest
from unittest import mock

import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import saved_model_pb2
from tritonclient.grpc import model_config_pb2

from generators.backends.savedmodel import savedmodel_builder
from generators.build_options import BuildOptions
from generators.model_config import parse_config
from generators.writer import write_model_dir
from tests.runners import savedmodel_runner
from tests.savedmodel_support import VARIANTS, BuiltModels, ModelTestCase, Req, make_inputs, plain

_TF_TYPES = {  # config data type -> TensorFlow DataType, as the backend maps them
    "TYPE_FP32": types_pb2.DT_FLOAT, "TYPE_INT32": types_pb2.DT_INT32,
    "TYPE_STRING": types_pb2.DT_STRING, "TYPE_BOOL": types_pb2.DT_BOOL,
    "TYPE_UINT64": types_pb2.DT_UINT64, "TYPE_INT8": types_pb2.DT_INT8,
    "TYPE_INT16": types_pb2.DT_INT16, "TYPE_INT64": types_pb2.DT_INT64,
    "TYPE_UINT8": types_pb2.DT_UINT8, "TYPE_UINT16": types_pb2.DT_UINT16,
    "TYPE_UINT32": types_pb2.DT_UINT32, "TYPE_FP16": types_pb2.DT_HALF,
    "TYPE_FP64": types_pb2.DT_DOUBLE,
}
_CONTROL_TYPES = {"fp32_false_true": "TYPE_FP32", "int32_false_true": "TYPE_INT32",
                  "bool_false_true": "TYPE_BOOL"}

# Every variant: SignatureTest checks them all.
MODELS = BuiltModels("savedmodel_builder_test.", VARIANTS)


# unittest builds the models once per module and removes them afterwards.
setUpModule = MODELS.build  # noqa: N816 - unittest's name
tearDownModule = MODELS.remove  # noqa: N816 - unittest's name


class _ModelTestCase(ModelTestCase):
    """Runs this module's prebuilt models."""

    models = MODELS


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
                self._check(MODELS.path(key))


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
        self.assertEqual(plain(model[0](inputs)["OUTPUT"])[0], ["5"])


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
        """String file state: Triton feeds "" (it zeroes string states), width 2: "1" .. "10"."""
        self.assertEqual(self.sequence("object_variable_file", [1, 2, 3, 4], width=2),
                         [["1"] * 2, ["3"] * 2, ["6"] * 2, ["10"] * 2])


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
            state, rows = outputs["OUTPUT_STATE"], rows + [plain(outputs["OUTPUT"])[0]]
        return rows

    def test_no_initial_state(self):
        """INPUT_STATE = previous OUTPUT_STATE: still 1, 3, 6, 10."""
        self.assertEqual(self._run("int32"), [[1], [3], [6], [10]])

    def test_file_initial_state(self):
        """INPUT_STATE = 100, then previous OUTPUT_STATE: 101 .. 110."""
        self.assertEqual(self._run("int32_file"), [[101], [103], [106], [110]])


class StateTypeTest(_ModelTestCase):
    """Every state dtype: the sum in the state's dtype, a boolean state's running XOR."""

    def test_numeric_dtypes_without_initial_state(self):
        """Garbage state inputs never leak: 1, 2, 3, 4 -> 1, 3, 6, 10."""
        for key in ("int64_nobatch", "uint64"):
            with self.subTest(key):
                self.assertEqual(self.sequence(key, [1, 2, 3, 4]), [[1], [3], [6], [10]])

    def test_numeric_dtypes_with_zero_initial_state(self):
        """Zero initial state: 1, 3, 6, 10."""
        for key in ("uint8_zero", "float16_zero"):
            with self.subTest(key):
                self.assertEqual(self.sequence(key, [1, 2, 3, 4]), [[1], [3], [6], [10]])

    def test_numeric_dtypes_with_file_initial_state(self):
        """File initial state 100 in the state's dtype: 101, 103, 106, 110."""
        for key in ("int8_file", "uint32_file"):
            with self.subTest(key):
                self.assertEqual(self.sequence(key, [1, 2, 3, 4]),
                                 [[101], [103], [106], [110]])

    def test_outputs_have_the_state_dtype(self):
        """OUTPUT and OUTPUT_STATE are returned in the configured dtype."""
        expected = {"int8_file": "int8", "uint16_nobatch_variable": "uint16",
                    "float16_zero": "float16", "float64_variable": "float64",
                    "boolean": "bool", "int32_state_int64": "int64",
                    "float16_nobatch_state_float32": "float32"}
        for key, dtype in expected.items():
            runner, variant = self.model(key)
            outputs = runner(make_inputs(variant, [Req(5, 1, start=True)]))
            with self.subTest(key):
                self.assertEqual({n: str(v.dtype) for n, v in outputs.items()},
                                 {"OUTPUT": dtype, "OUTPUT_STATE": dtype})

    def test_variable_width_three(self):
        """Width 3: [1, 2, 3] then [4, 5, 6] -> [1, 2, 3], [5, 7, 9], element-wise."""
        for key in ("int16_variable", "uint16_nobatch_variable", "float64_variable"):
            with self.subTest(key):
                self.assertEqual(self.sequence(key, [[1, 2, 3], [4, 5, 6]], width=3),
                                 [[1, 2, 3], [5, 7, 9]])

    def test_boolean_running_xor(self):
        """No initial state: true, false, true, true -> true, true, false, true."""
        self.assertEqual(self.sequence("boolean", [True, False, True, True]),
                         [[True], [True], [False], [True]])

    def test_boolean_file_initial_state(self):
        """The file holds true: true, false, true, true -> false, false, true, false."""
        self.assertEqual(self.sequence("boolean_file", [True, False, True, True]),
                         [[False], [False], [True], [False]])

    def test_boolean_variable_width_three(self):
        """[true, false, true] then [true, true, false] -> [true, false, true], [false, true, true]."""
        self.assertEqual(
            self.sequence("boolean_nobatch_variable",
                          [[True, False, True], [True, True, False]], width=3),
            [[True, False, True], [False, True, True]])

    def test_interleaved_sequences_with_null_rows(self):
        """Three uint64 sequences in moving slots with null rows between them."""
        model = self.model("uint64")
        steps = [
            [Req(987, 1, start=True), Req(988, 2, start=True), None, None],
            [Req(987, 2), Req(988, 4), None, Req(1003, 3, start=True)],
            [Req(988, 6), Req(987, 3), None, Req(1003, 3, end=True)],
            [Req(987, 4, end=True), Req(988, 8, end=True), None, None],
        ]
        outputs = [self.step(model, slots) for slots in steps]
        self.assertEqual([outputs[0][0], outputs[1][0], outputs[2][1], outputs[3][0]],
                         [[1], [3], [6], [10]])
        self.assertEqual([outputs[0][1], outputs[1][1], outputs[2][0], outputs[3][1]],
                         [[2], [6], [12], [20]])
        self.assertEqual([outputs[1][3], outputs[2][3]], [[3], [6]])

    def test_boolean_interleaved_sequences(self):
        """Two boolean sequences side by side keep their own parity."""
        model = self.model("boolean")
        steps = [
            [Req(11, True, start=True), Req(12, False, start=True), None],
            [Req(12, True), Req(11, True), None],
            [Req(11, False, end=True), Req(12, True, end=True), None],
        ]
        outputs = [self.step(model, slots) for slots in steps]
        self.assertEqual([outputs[0][0], outputs[1][1], outputs[2][0]],
                         [[True], [False], [False]])
        self.assertEqual([outputs[0][1], outputs[1][0], outputs[2][1]],
                         [[False], [True], [False]])


class WiderStateTest(_ModelTestCase):
    """A state wider than INPUT: INPUT is cast, the sum kept in the state's dtype."""

    def test_int32_input_int64_state(self):
        """1, 2, 3, 4 -> 1, 3, 6, 10 as int64."""
        self.assertEqual(self.sequence("int32_state_int64", [1, 2, 3, 4]),
                         [[1], [3], [6], [10]])

    def test_int64_state_holds_what_int32_cannot(self):
        """2147483647 twice -> 2147483647, 4294967294: the running sum is not int32."""
        self.assertEqual(self.sequence("int32_state_int64", [2147483647, 2147483647]),
                         [[2147483647], [4294967294]])

    def test_float16_input_float32_state(self):
        """1, 2, 3, 4 -> 1, 3, 6, 10 as float32, without batching."""
        self.assertEqual(self.sequence("float16_nobatch_state_float32", [1, 2, 3, 4]),
                         [[1.0], [3.0], [6.0], [10.0]])


class StateShapeTest(_ModelTestCase):
    """States shaped unlike INPUT: [2] (sum and count) and [] (a scalar sum)."""

    def test_sum_count(self):
        """1, 2, 3, 4 -> OUTPUT 101, 203, 306, 410; the state [1, 1] .. [10, 4]."""
        for key in ("int32_sum_count", "int32_nobatch_sum_count"):
            with self.subTest(key):
                self.assertEqual(self.sequence_outputs(key, [1, 2, 3, 4]), {
                    "OUTPUT": [[101], [203], [306], [410]],
                    "OUTPUT_STATE": [[1, 1], [3, 2], [6, 3], [10, 4]],
                })

    def test_sum_count_interleaved_with_null_rows(self):
        """Two sequences in moving slots and a null row: 101 .. 410 and 102 .. 420."""
        model = self.model("int32_sum_count")
        steps = [
            [Req(21, 1, start=True), None, Req(22, 2, start=True)],
            [Req(22, 4), Req(21, 2), None],
            [None, Req(21, 3), Req(22, 6)],
            [Req(21, 4, end=True), Req(22, 8, end=True), None],
        ]
        outputs = [self.step_outputs(model, slots) for slots in steps]
        rows = {21: (0, 1, 1, 0), 22: (2, 0, 2, 1)}
        self.assertEqual([out["OUTPUT"][row] for out, row in zip(outputs, rows[21], strict=True)],
                         [[101], [203], [306], [410]])
        self.assertEqual([out["OUTPUT"][row] for out, row in zip(outputs, rows[22], strict=True)],
                         [[102], [206], [312], [420]])
        self.assertEqual([out["OUTPUT_STATE"][row]
                          for out, row in zip(outputs, rows[22], strict=True)],
                         [[2, 1], [6, 2], [12, 3], [20, 4]])

    def test_scalar_state(self):
        """1, 2, 3, 4 -> OUTPUT 1, 3, 6, 10; the scalar state 1, 3, 6, 10."""
        for key in ("int32_scalar", "int32_nobatch_scalar"):
            with self.subTest(key):
                self.assertEqual(self.sequence_outputs(key, [1, 2, 3, 4]), {
                    "OUTPUT": [[1], [3], [6], [10]],
                    "OUTPUT_STATE": [[1], [3], [6], [10]],
                })

    def test_scalar_state_shapes(self):
        """OUTPUT has INPUT's dims, OUTPUT_STATE the state's: [B, 1] and [B]; [1] and []."""
        for key, shapes in (("int32_scalar", {"OUTPUT": (2, 1), "OUTPUT_STATE": (2,)}),
                            ("int32_nobatch_scalar", {"OUTPUT": (1,), "OUTPUT_STATE": ()})):
            runner, variant = self.model(key)
            rows = 2 if variant.max_batch else 1  # batched: one sequence and a null row
            slots = [Req(5, 1, start=True)] + [None] * (rows - 1)
            outputs = runner(make_inputs(variant, slots))
            with self.subTest(key):
                self.assertEqual({n: v.shape for n, v in outputs.items()}, shapes)

    def test_sum_count_on_a_state_updating_backend(self):
        """OUTPUT_STATE fed back as INPUT_STATE: still 101, 203, 306, 410."""
        runner, variant = self.model("int32_nobatch_sum_count")
        state, rows = None, []
        for index, value in enumerate([1, 2, 3, 4]):
            inputs = make_inputs(variant, [Req(5, value, start=index == 0, end=index == 3)])
            if state is not None:
                inputs["INPUT_STATE"] = state
            outputs = runner(inputs)
            state, rows = outputs["OUTPUT_STATE"], rows + [plain(outputs["OUTPUT"])[0]]
        self.assertEqual(rows, [[101], [203], [306], [410]])


class SameBufferAndDynaTest(_ModelTestCase):
    """The single-buffer option and the oldest strategy change the config, not the sums."""

    def test_same_buffer(self):
        """use_same_buffer_for_input_output: 1, 2, 3, 4 -> 1, 3, 6, 10."""
        self.assertEqual(self.sequence("float32_same_buffer", [1, 2, 3, 4]),
                         [[1.0], [3.0], [6.0], [10.0]])

    def test_dyna_interleaved_without_null_rows(self):
        """Oldest strategy (READY always 1): two sequences batched, 1 .. 10 and 5 .. 50."""
        model = self.model("int32_dyna")
        steps = [
            [Req(31, 1, start=True), Req(32, 5, start=True)],
            [Req(32, 10), Req(31, 2)],
            [Req(31, 3), Req(32, 15)],
            [Req(32, 20, end=True), Req(31, 4, end=True)],
        ]
        outputs = [self.step(model, slots) for slots in steps]
        self.assertEqual([outputs[0][0], outputs[1][1], outputs[2][0], outputs[3][1]],
                         [[1], [3], [6], [10]])
        self.assertEqual([outputs[0][1], outputs[1][0], outputs[2][1], outputs[3][0]],
                         [[5], [15], [30], [50]])


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
        models = {key: tf.saved_model.load(str(MODELS.path(key) / "1" / "model.savedmodel"))
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
        """Two pairs, eagerly loaded: seven inputs; 1, 2, 3, 4 -> OUTPUT 50."""
        model = tf.saved_model.load(str(MODELS.path("int32_states2") / "1" / "model.savedmodel"))
        signature = model.signatures["serving_default"]
        self.assertEqual(set(signature.structured_input_signature[1]),
                         {"INPUT", "INPUT_STATE", "INPUT_STATE_1", "START", "END", "READY",
                          "CORRID"})
        for index, value in enumerate([1, 2, 3, 4]):
            inputs = make_inputs(VARIANTS["int32_states2"],
                                 [Req(5, value, start=index == 0, end=index == 3)])
            outputs = {k: v.numpy().tolist() for k, v in signature(**inputs).items()}
        self.assertEqual(outputs, {"OUTPUT": [[50]], "OUTPUT_STATE": [[10]],
                                   "OUTPUT_STATE_1": [[20]]})


if __name__ == "__main__":
    unittest.main()
