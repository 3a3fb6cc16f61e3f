"""Each built ONNX graph matches its config (CONTRACT.md section 2, model-side rules).

For every onnx model of the built repositories (tests.repo_location): the
graph's inputs are exactly the config's state inputs (one per `state`
entry: INPUT_STATE, INPUT_STATE_1, ...), INPUT, START and READY (dyna adds
END and CORRID); its outputs exactly OUTPUT and the state outputs. Triton's
onnxruntime backend refuses a model whose input count differs. Element
types, symbolic batch and -1 dims, the pinned IR version and opset, and
onnx's full check are verified too.

The state-coverage models (every state type, wider and reshaped states,
the single-buffer option) are also run in-process here, through
tests/runners/onnx_runner.py, against the contract's literal values
(CONTRACT.md section 3 and the issue's worked sequences): `StateCoverageTest`
plays Triton's part by hand (a fresh state at START, OUTPUT_STATE handed
back, padding rows), independently of verification/triton_sim.py, which the
contract test drives every model through.
"""

import itertools
import json
import pathlib
import tempfile
import unittest
from typing import Dict, List, Optional, Sequence, Tuple
from unittest import mock

import numpy as np
import onnx
from tritonclient.grpc import model_config_pb2 as mc

from generators import served_types
from generators.backends.onnx import onnx_builder
from generators.build_options import DEFAULT_ONNX_IR_VERSION, DEFAULT_ONNX_OPSET, BuildOptions
from generators.dtypes import dtype_info
from generators.model_config import parse_config
from generators.variant import STATE_COVERAGE_DTYPES, Backend, DType, InitialState, Variant
from tests import repo_location
from tests.runners import onnx_runner

_ONNX_ELEM = {
    "TYPE_BOOL": onnx.TensorProto.BOOL, "TYPE_INT8": onnx.TensorProto.INT8,
    "TYPE_INT16": onnx.TensorProto.INT16, "TYPE_INT32": onnx.TensorProto.INT32,
    "TYPE_INT64": onnx.TensorProto.INT64, "TYPE_UINT8": onnx.TensorProto.UINT8,
    "TYPE_UINT16": onnx.TensorProto.UINT16, "TYPE_UINT32": onnx.TensorProto.UINT32,
    "TYPE_UINT64": onnx.TensorProto.UINT64, "TYPE_FP16": onnx.TensorProto.FLOAT16,
    "TYPE_BF16": onnx.TensorProto.BFLOAT16, "TYPE_FP32": onnx.TensorProto.FLOAT,
    "TYPE_FP64": onnx.TensorProto.DOUBLE, "TYPE_STRING": onnx.TensorProto.STRING,
}
_CONTROL_ELEM = {"fp32_false_true": onnx.TensorProto.FLOAT,
                 "int32_false_true": onnx.TensorProto.INT32,
                 "bool_false_true": onnx.TensorProto.BOOL}


def onnx_models() -> List[Tuple[Variant, pathlib.Path]]:
    """(variant, model dir) of every onnx model in the built repositories' manifest."""
    root = repo_location.implicit_repo(("onnx",))
    manifest = json.loads((root / "manifest.json").read_text())
    return [(Variant.from_spec(m["variant"]), root / m["repository"] / m["name"])
            for m in manifest["models"] if m["variant"]["backend"] == "onnx"]


def state_names(config: mc.ModelConfig) -> Tuple[List[str], List[str]]:
    """(state input names, state output names) of a config, in config order."""
    states = config.sequence_batching.state
    return [s.input_name for s in states], [s.output_name for s in states]


class OnnxGraphTest(unittest.TestCase):
    """The ONNX graph matches its config."""

    @classmethod
    def setUpClass(cls) -> None:
        """Find the onnx models once."""
        cls.models = onnx_models()

    def _expected_types(self, config) -> Dict[str, Tuple[int, List[int]]]:
        """Graph input/output name -> (element type, dims without batch)."""
        types = {tensor.name: (_ONNX_ELEM[mc.DataType.Name(tensor.data_type)], list(tensor.dims))
                 for tensor in list(config.input) + list(config.output)}
        for state in config.sequence_batching.state:
            state_type = (_ONNX_ELEM[mc.DataType.Name(state.data_type)], list(state.dims))
            types[state.input_name] = types[state.output_name] = state_type
        for control_input in config.sequence_batching.control_input:
            control = control_input.control[0]
            field = next((f for f in _CONTROL_ELEM if len(getattr(control, f))), None)
            elem = _CONTROL_ELEM[field] if field else _ONNX_ELEM[
                mc.DataType.Name(control.data_type)]
            types[control_input.name] = (elem, [1])
        return types

    def _check_value(self, value, elem: int, dims: List[int], batched: bool) -> None:
        """One graph input/output: element type, rank, symbolic batch and -1 dims."""
        tensor = value.type.tensor_type
        self.assertEqual(tensor.elem_type, elem, value.name)
        shape = list(tensor.shape.dim)
        self.assertEqual(len(shape), len(dims) + batched, value.name)
        if batched:
            self.assertTrue(shape[0].dim_param and not shape[0].dim_value, "batch dim symbolic")
        for dim, want in zip(shape[batched:], dims, strict=True):
            if want == -1:
                self.assertTrue(dim.dim_param and not dim.dim_value, f"{value.name} -1 symbolic")
            else:
                self.assertEqual(dim.dim_value, want, value.name)

    def _check_names(self, variant: Variant, model: onnx.ModelProto, config) -> None:
        """Inputs: states + INPUT, START, READY (+ END, CORRID); outputs OUTPUT + states."""
        inputs, outputs = state_names(config)
        self.assertEqual(list(zip(inputs, outputs, strict=True)),
                         [(p.input, p.output) for p in variant.state_pairs])
        names = inputs + ["INPUT", "START", "READY"] + (["END", "CORRID"] * variant.dyna)
        self.assertEqual(sorted(i.name for i in model.graph.input), sorted(names))
        self.assertEqual(sorted(o.name for o in model.graph.output), sorted(["OUTPUT"] + outputs))

    def test_graph_matches_config(self):
        """Inputs, outputs, element types, symbolic dims, pinned versions, full check."""
        self.assertTrue(self.models, "the manifest lists no onnx models")
        for variant, path in self.models:
            with self.subTest(model=f"{path.parent.name}/{path.name}"):
                model = onnx.load(str(path / "1" / "model.onnx"))
                config = parse_config((path / "config.pbtxt").read_text())
                self._check_names(variant, model, config)
                types = self._expected_types(config)
                for value in list(model.graph.input) + list(model.graph.output):
                    self._check_value(value, *types[value.name], batched=variant.max_batch > 0)
                self.assertEqual(model.ir_version, DEFAULT_ONNX_IR_VERSION)
                self.assertEqual({o.domain: o.version for o in model.opset_import},
                                 {"": DEFAULT_ONNX_OPSET})
                onnx.checker.check_model(model, full_check=True)

    def test_multi_state_models_are_built(self):
        """The matrix's multi-state repositories hold 2- and 3-pair onnx models."""
        counts = {len(v.state_pairs) for v, _ in self.models if v.multi_state}
        self.assertEqual(counts, {2, 3})


# numpy type of each state-coverage dtype's tensors as Triton's clients hold
# them (bfloat16 travels as float32), and what a START without an initial
# state may find in the state buffer: NaN (floats) or a value the sums never
# reach, so a leak shows.
_NUMPY = {
    DType.BOOLEAN: np.bool_, DType.INT8: np.int8, DType.INT16: np.int16, DType.INT32: np.int32,
    DType.INT64: np.int64, DType.UINT8: np.uint8, DType.UINT16: np.uint16,
    DType.UINT32: np.uint32, DType.UINT64: np.uint64, DType.FLOAT16: np.float16,
    DType.BFLOAT16: np.float32, DType.FLOAT32: np.float32, DType.FLOAT64: np.float64,
}
_LEFTOVER = {np.bool_: True, np.float16: np.nan, np.float32: np.nan, np.float64: np.nan}
_INTEGER_LEFTOVER = 77
# (corrid or None for a padding row, INPUT values, START) of one row.
Row = Tuple[Optional[int], Sequence, bool]


class InProcessServer:
    """Triton's part around one onnx model, by hand: slots, controls, state hand-back.

    A sequence's state starts, on START, as zeros (zero initial state), the
    file's value in every element (100; a boolean state: true) or leftovers
    (`_LEFTOVER`: no initial state), shaped [1] + state dims with -1 -> 1;
    afterwards it is the OUTPUT_STATE the model returned for that sequence.
    A padding row has READY 0 and leftovers for its data and state.
    """

    def __init__(self, variant: Variant, path: pathlib.Path) -> None:
        """Load the model with the family's runner."""
        self.variant = variant
        self.run = onnx_runner.load(path)
        self.data_type = _NUMPY[variant.dtype]
        self.state_type = _NUMPY[variant.state_type]
        self.control_type = np.dtype(dtype_info(variant.dtype).control_numpy)
        self.states: Dict[int, np.ndarray] = {}

    def _leftover(self, numpy_type, shape) -> np.ndarray:
        return np.full(shape, _LEFTOVER.get(numpy_type, _INTEGER_LEFTOVER), dtype=numpy_type)

    def _fresh_state(self) -> np.ndarray:
        shape = self.variant.state_shape
        if self.variant.initial_state is InitialState.ZERO:
            return np.zeros(shape, dtype=self.state_type)
        if self.variant.initial_state is InitialState.FILE:
            value = True if self.variant.state_type is DType.BOOLEAN else 100
            return np.full(shape, value, dtype=self.state_type)
        return self._leftover(self.state_type, shape)

    def execute(self, rows: Sequence[Row]) -> Dict[int, Tuple[np.ndarray, np.ndarray]]:
        """One execution of `rows` (one row without batching): corrid -> (OUTPUT, OUTPUT_STATE)."""
        width = len(next(values for corrid, values, _ in rows if corrid is not None))
        data, states, starts, readies = [], [], [], []
        for corrid, values, start in rows:
            if corrid is None:
                data.append(self._leftover(self.data_type, (width,)))
                states.append(self._leftover(self.state_type, self.variant.state_shape))
            else:
                data.append(np.array(values, dtype=self.data_type))
                if start:
                    self.states[corrid] = self._fresh_state()
                states.append(self.states[corrid])
            starts.append([start])
            readies.append([corrid is not None])
        feed = {"INPUT": np.stack(data), "INPUT_STATE": np.stack(states),
                "START": np.array(starts, dtype=self.control_type),
                "READY": np.array(readies, dtype=self.control_type)}
        if self.variant.max_batch == 0:
            feed = {name: np.asarray(tensor[0]) for name, tensor in feed.items()}
        result = self.run(feed)
        output, state = result["OUTPUT"], result["OUTPUT_STATE"]
        if self.variant.max_batch == 0:
            output, state = output[np.newaxis], state[np.newaxis]
        answers = {}
        for index, (corrid, _, _) in enumerate(rows):
            if corrid is not None:
                self.states[corrid] = state[index]
                answers[corrid] = (output[index], state[index])
        return answers

    def sequence(self, values: Sequence) -> List[Tuple[np.ndarray, np.ndarray]]:
        """One sequence alone (corrid 1), one request per value: (OUTPUT, OUTPUT_STATE) each."""
        return [self.execute([(1, value if isinstance(value, list) else [value], index == 0)])[1]
                for index, value in enumerate(values)]


# The contract's worked sequences (CONTRACT.md section 3, issue 26).
NUMERIC_STEPS = [1, 2, 3, 4]
NUMERIC_SUMS = {InitialState.NONE: [1, 3, 6, 10], InitialState.ZERO: [1, 3, 6, 10],
                InitialState.FILE: [101, 103, 106, 110]}
BOOLEAN_STEPS = [True, False, True, True]
BOOLEAN_PARITIES = {InitialState.NONE: [True, True, False, True],
                    InitialState.ZERO: [True, True, False, True],
                    InitialState.FILE: [False, False, True, False]}
SUM_COUNT_OUTPUTS = [101, 203, 306, 410]
SUM_COUNT_STATES = [[1, 1], [3, 2], [6, 3], [10, 4]]


def coverage_models(repository: str) -> List[Tuple[Variant, pathlib.Path]]:
    """(variant, model dir) of the onnx models of one built repository."""
    models = [(v, p) for v, p in onnx_models() if p.parent.name == repository]
    if not models:
        raise AssertionError(f"no onnx models in {repository}")
    return models


class AnswersTestCase(unittest.TestCase):
    """Compares a sequence's answers with literals."""

    def assert_answers(self, answers, outputs: List, states: List, numpy_type) -> None:
        """Each step's OUTPUT and OUTPUT_STATE equal the literals, in the state's numpy type."""
        for step, ((output, state), want, want_state) in enumerate(
                zip(answers, outputs, states, strict=True)):
            self.assertEqual(output.dtype, np.dtype(numpy_type), f"step {step} OUTPUT type")
            self.assertEqual(state.dtype, np.dtype(numpy_type), f"step {step} state type")
            self.assertEqual(output.tolist(), want, f"step {step} OUTPUT")
            self.assertEqual(state.tolist(), want_state, f"step {step} OUTPUT_STATE")


class StateCoverageTest(AnswersTestCase):
    """The state-coverage models answer the contract's literal values in ONNX Runtime."""

    def _check_sequence(self, variant: Variant, path: pathlib.Path) -> None:
        """Steps 1, 2, 3, 4 (boolean: true, false, true, true) give the running sum (parity)."""
        boolean = variant.state_type is DType.BOOLEAN
        steps = BOOLEAN_STEPS if boolean else NUMERIC_STEPS
        wants = (BOOLEAN_PARITIES if boolean else NUMERIC_SUMS)[variant.initial_state]
        answers = InProcessServer(variant, path).sequence(steps)
        self.assert_answers(answers, [[w] for w in wants], [[w] for w in wants],
                           _NUMPY[variant.state_type])

    def test_every_state_type(self):
        """13 dtypes, no / zero / file initial state, batched and not: the running values."""
        repositories = ("qa_state_type_implicit_model_repository",
                        "qa_state_type_initial_state_implicit_model_repository",
                        "qa_state_type_initial_state_file_implicit_model_repository")
        for repository in repositories:
            models = coverage_models(repository)
            self.assertEqual({v.dtype for v, _ in models},
                             {d for d in STATE_COVERAGE_DTYPES | {DType.FLOAT32, DType.INT32}
                              if served_types.exclusion("onnx", d.value) is None})
            for variant, path in models:
                with self.subTest(model=f"{repository}/{variant.name}"):
                    self._check_sequence(variant, path)

    def test_batched_sequences_interleave(self):
        """Three sequences in one batch, a padding row between them, each keeps its own state."""
        for variant, path in coverage_models("qa_state_type_implicit_model_repository"):
            if not variant.max_batch:
                continue
            with self.subTest(model=variant.name):
                server = InProcessServer(variant, path)
                if variant.dtype is DType.BOOLEAN:
                    rounds = [[(1, [True], True), (None, [], False), (2, [False], True)],
                              [(1, [True], False), (None, [], False), (2, [True], False),
                               (3, [True], True)],
                              [(2, [True], False), (None, [], False), (1, [False], False),
                               (3, [True], False)]]
                    wants = {1: [True, False, False], 2: [False, True, False], 3: [True, False]}
                else:
                    rounds = [[(1, [1], True), (None, [], False), (2, [5], True)],
                              [(1, [2], False), (None, [], False), (2, [6], False), (3, [9], True)],
                              [(2, [7], False), (None, [], False), (1, [3], False),
                               (3, [1], False)]]
                    wants = {1: [1, 3, 6], 2: [5, 11, 18], 3: [9, 10]}
                got: Dict[int, List] = {}
                for rows in rounds:
                    for corrid, (output, _) in server.execute(rows).items():
                        got.setdefault(corrid, []).extend(output.tolist())
                self.assertEqual(got, wants)

    def test_variable_width(self):
        """A width-3 sequence: [1, 2, 3] then [4, 5, 6] gives [5, 7, 9] (boolean: xor)."""
        for variant, path in coverage_models("qa_variable_state_type_implicit_model_repository"):
            with self.subTest(model=variant.name):
                server = InProcessServer(variant, path)
                if variant.dtype is DType.BOOLEAN:
                    steps, wants = [[True, False, True], [True, True, False]], [
                        [True, False, True], [False, True, True]]
                else:
                    steps, wants = [[1, 2, 3], [4, 5, 6]], [[1, 2, 3], [5, 7, 9]]
                self.assert_answers(server.sequence(steps), wants, wants, _NUMPY[variant.dtype])

    def test_wider_state(self):
        """int32 -> int64 and float16 -> float32: OUTPUT and the state in the wider type."""
        for variant, path in coverage_models("qa_wider_state_implicit_model_repository"):
            with self.subTest(model=variant.name):
                self.assertIsNotNone(variant.state_dtype)
                self._check_sequence(variant, path)

    def test_sum_count_state(self):
        """State [sum, count]: 1, 2, 3, 4 -> 101, 203, 306, 410, alone and interleaved."""
        models = [(v, p) for v, p in coverage_models("qa_state_shape_implicit_model_repository")
                  if v.state_dims == (2,)]
        self.assertEqual(len(models), 2)
        for variant, path in models:
            with self.subTest(model=variant.name):
                server = InProcessServer(variant, path)
                self.assert_answers(server.sequence(NUMERIC_STEPS),
                                   [[w] for w in SUM_COUNT_OUTPUTS], SUM_COUNT_STATES, np.int32)
                if variant.max_batch:
                    server.execute([(1, [1], True), (None, [], False), (2, [5], True)])
                    answers = server.execute([(2, [6], False), (1, [2], False)])
                    self.assertEqual({c: (o.tolist(), s.tolist()) for c, (o, s) in answers.items()},
                                     {1: ([203], [3, 2]), 2: ([211], [11, 2])})

    def test_scalar_state(self):
        """State dims []: OUTPUT = INPUT + S with shape [1], the state a scalar per sequence."""
        models = [(v, p) for v, p in coverage_models("qa_state_shape_implicit_model_repository")
                  if v.state_dims == ()]
        self.assertEqual(len(models), 2)
        for variant, path in models:
            with self.subTest(model=variant.name):
                answers = InProcessServer(variant, path).sequence(NUMERIC_STEPS)
                self.assert_answers(answers, [[w] for w in NUMERIC_SUMS[InitialState.ZERO]],
                                   NUMERIC_SUMS[InitialState.ZERO], np.int32)

    def test_same_buffer_models_are_the_plain_ones(self):
        """use_same_buffer_for_input_output changes the config only: the same model bytes."""
        root = repo_location.implicit_repo(("onnx",))
        models = coverage_models("qa_same_buffer_implicit_model_repository")
        self.assertEqual(len(models), 4)
        for variant, path in models:
            with self.subTest(model=variant.name):
                self.assertTrue(variant.same_buffer)
                plain = root / "qa_sequence_implicit_model_repository" / variant.name
                self.assertEqual((path / onnx_runner.MODEL_PATH).read_bytes(),
                                 (plain / onnx_runner.MODEL_PATH).read_bytes())
                self._check_sequence(variant, path)

    def test_no_model_of_an_excluded_dtype(self):
        """The dtypes Triton's onnxruntime backend refuses (served_types) are built nowhere."""
        excluded = {DType(dtype) for family, dtype in served_types.EXCLUSIONS if family == "onnx"}
        self.assertIn(DType.BFLOAT16, excluded)
        self.assertFalse([p for v, p in onnx_models() if {v.dtype, v.state_type} & excluded])


class BFloat16GraphTest(AnswersTestCase):
    """The bfloat16 graphs, built with the served-types exclusion lifted.

    Triton's r24.10 onnxruntime backend refuses TYPE_BF16 at load, so the
    matrix holds no onnx bfloat16 model; the builder still makes a right one
    for a backend that serves it: bfloat16 at the graph's edges, the sum in
    float32 inside (its opset floor, 13: onnx_opset_test).
    """

    def _variant(self, **fields) -> Variant:
        """A bfloat16 onnx variant, made while the exclusion is lifted."""
        with mock.patch.dict(served_types.EXCLUSIONS, clear=True):
            return Variant(backend=Backend.ONNX, dtype=DType.BFLOAT16, **fields)

    def _write(self, variant: Variant) -> pathlib.Path:
        """The variant's model written into a temporary model folder (`1/model.onnx`)."""
        root = pathlib.Path(self.enterContext(tempfile.TemporaryDirectory()))
        (root / "1").mkdir()
        onnx_builder.write_model(variant, BuildOptions(), root / "1")
        return root

    def test_running_sums(self):
        """Batched and not, no / zero / file initial state: 1, 2, 3, 4 -> the running sums."""
        for max_batch, initial_state in itertools.product((0, 8), InitialState):
            variant = self._variant(shape=(1,), max_batch=max_batch, initial_state=initial_state)
            with self.subTest(model=variant.name, initial_state=initial_state.value):
                answers = InProcessServer(variant, self._write(variant)).sequence(NUMERIC_STEPS)
                wants = [[w] for w in NUMERIC_SUMS[initial_state]]
                self.assert_answers(answers, wants, wants, np.float32)

    def test_variable_width(self):
        """[1, 2, 3] then [4, 5, 6] -> [5, 7, 9]."""
        variant = self._variant(shape=(-1,), max_batch=8)
        answers = InProcessServer(variant, self._write(variant)).sequence([[1, 2, 3], [4, 5, 6]])
        self.assert_answers(answers, [[1, 2, 3], [5, 7, 9]], [[1, 2, 3], [5, 7, 9]], np.float32)

    def test_edges_bfloat16_sum_float32(self):
        """INPUT, OUTPUT and the state are bfloat16; the casts go to float32 and back."""
        variant = self._variant(shape=(1,), max_batch=8)
        model = onnx_builder.build_model(variant, BuildOptions())
        edges = {v.name: v.type.tensor_type.elem_type
                 for v in list(model.graph.input) + list(model.graph.output)}
        for name in ("INPUT", "INPUT_STATE", "OUTPUT", "OUTPUT_STATE"):
            self.assertEqual(edges[name], onnx.TensorProto.BFLOAT16, name)
        casts = {n.output[0]: n.attribute[0].i for n in model.graph.node if n.op_type == "Cast"}
        self.assertEqual(casts, {"START_bool": onnx.TensorProto.BOOL,
                                 "READY_bool": onnx.TensorProto.BOOL,
                                 "INPUT_compute": onnx.TensorProto.FLOAT,
                                 "INPUT_STATE_compute": onnx.TensorProto.FLOAT,
                                 "result_state": onnx.TensorProto.BFLOAT16})


if __name__ == "__main__":
    unittest.main()
