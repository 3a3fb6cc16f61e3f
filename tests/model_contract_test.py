"""Model-contract tests: every generated model of one backend, driven like Triton would.

Each model of the backend named by CONTRACT_BACKEND (default "onnx") in the
built repositories (tests.repo_location) is wrapped in `tests.triton_sim`
with its runner from `tests/runners/<backend>_runner.py`, and sent the
sequences of Triton's QA clients (reference sections 7.2 and 7.4). Expected
values are the contract's literals (45, 10, 27, 51, ...); `expected_output`
is the one place that adjusts them per family (CONTRACT.md section 3). Every
step's OUTPUT is checked, and OUTPUT must equal OUTPUT_STATE. For ONNX the
graph itself is checked too (CONTRACT.md section 2, model-side rules).
"""

import functools
import json
import os
import pathlib
import unittest
import zlib
from typing import Callable, Dict, List, Tuple

import numpy as np
import onnx
from tritonclient.grpc import model_config_pb2 as mc

from generators.build_options import DEFAULT_ONNX_IR_VERSION, DEFAULT_ONNX_OPSET
from generators.dtypes import family_info
from generators.model_config import parse_config
from generators.variant import Backend, DType, InitialState, Variant
from tests import repo_location, triton_sim

BACKEND = os.environ.get("CONTRACT_BACKEND", "onnx")
# The numpy dtype a client gets OUTPUT in (CONTRACT.md section 2: bool models carry int32).
OUTPUT_NUMPY = {DType.FLOAT32: np.float32, DType.INT32: np.int32, DType.OBJECT: np.object_,
                DType.BOOL: np.int32}
FILE_INITIAL_VALUE = 100  # what the file initial state holds (CONTRACT.md section 1)
# Nobatch models run with 4 instances, as upstream's trial 0 does.
NOBATCH_INSTANCES = 4

# A step is {corrid: (value, flags, running sum the contract expects)}.
Step = Dict[int, Tuple[object, str, int]]


def expected_output(variant: Variant, running_sum: int, value: int) -> int:
    """OUTPUT the contract defines for a step, from the plain running sum.

    ONNX string models are identities (upstream quirk the clients encode);
    every other family returns the running sum, strings as its decimal text,
    plus the file initial state's 100.
    """
    if variant.backend is Backend.ONNX and variant.dtype is DType.OBJECT:
        return value
    if variant.initial_state is InitialState.FILE:
        return running_sum + FILE_INITIAL_VALUE
    return running_sum


def _flags(index: int, count: int) -> str:
    """Flags of step `index` of `count`: "start" on the first, "end" on the last."""
    return " ".join(f for f, on in (("start", index == 0), ("end", index == count - 1)) if on)


def sequence(corrid: int, values: List, sums: List[int]) -> List[Step]:
    """One sequence's steps: START on the first, END on the last."""
    pairs = enumerate(zip(values, sums, strict=True))
    return [{corrid: (v, _flags(i, len(values)), s)} for i, (v, s) in pairs]


def parallel(*sequences: List[Step]) -> List[Step]:
    """Sequences sent side by side: step i of each runs in one round."""
    rounds: List[Step] = []
    for steps in sequences:
        for index, step in enumerate(steps):
            if index == len(rounds):
                rounds.append({})
            rounds[index].update(step)
    return rounds


@functools.lru_cache(maxsize=None)
def _load_models() -> List[Tuple[Variant, pathlib.Path]]:
    """(variant, model dir) of every BACKEND model in the built repositories' manifest."""
    root = repo_location.implicit_repo((BACKEND,))
    manifest = json.loads((root / "manifest.json").read_text())
    models = [(Variant.from_spec(m["variant"]), root / m["repository"] / m["name"])
              for m in manifest["models"] if m["variant"]["backend"] == BACKEND]
    if not models:
        raise AssertionError(f"manifest under {root} lists no '{BACKEND}' models")
    return models


@functools.lru_cache(maxsize=None)
def _runner(path: pathlib.Path) -> triton_sim.Runner:
    """One runner per model for the whole test run (a runner may be slow to load)."""
    return triton_sim.load_runner(BACKEND, path)


class ContractTestCase(unittest.TestCase):
    """Shared set-up: the models of BACKEND and one cached runner per model."""

    @classmethod
    def setUpClass(cls) -> None:
        """Load every model once."""
        cls.models = _load_models()
        cls.runners = {path: _runner(path) for _, path in cls.models}

    def simulate(self, variant: Variant, path: pathlib.Path) -> triton_sim.SequenceBatcherSim:
        """A fresh server around one model (state and slots start empty)."""
        return triton_sim.SequenceBatcherSim(
            path, self.runners[path], seed=zlib.crc32(path.name.encode()),
            instances=1 if variant.max_batch else NOBATCH_INSTANCES)

    def check_response(self, variant: Variant, response: triton_sim.Response,
                       value, running_sum: int) -> None:
        """OUTPUT equals OUTPUT_STATE, has INPUT's shape and dtype, holds the contract value."""
        width = np.asarray(value).shape or (1,)
        shape = ((1,) if variant.max_batch else ()) + width
        self.assertEqual(response.output.shape, shape)
        self.assertEqual(response.output.dtype, OUTPUT_NUMPY[variant.dtype])
        np.testing.assert_array_equal(response.output, response.output_state)
        self.assertEqual(response.output_state.dtype, response.output.dtype)
        wanted = np.broadcast_to(np.asarray(value), width).reshape(shape)
        for got, element in zip(response.output.ravel(), wanted.ravel(), strict=True):
            if variant.dtype is DType.OBJECT:
                self.assertEqual(got, str(int(got.decode())).encode(), "not a decimal string")
                got = int(got.decode())
            self.assertEqual(got, expected_output(variant, running_sum, int(element)))

    def drive(self, variant: Variant, path: pathlib.Path, steps: List[Step]):
        """Send the steps round by round, checking every response; returns the sim.

        Stops at the first wrong response, naming its round and sequence.
        """
        sim = self.simulate(variant, path)
        for index, step in enumerate(steps):
            responses = sim.step({c: (v, f) for c, (v, f, _) in step.items()})
            for corrid, (value, _, running_sum) in step.items():
                try:
                    self.check_response(variant, responses[corrid], value, running_sum)
                except AssertionError as err:
                    raise AssertionError(
                        f"round {index}, sequence {corrid}, INPUT {value!r}: {err}") from None
        return sim

    def run_models(self, steps: List[Step], executions=None, only=lambda v: True) -> None:
        """Drive every selected model; `executions(variant)` gives expected batch sizes."""
        selected = [(v, p) for v, p in self.models if only(v)]
        self.assertTrue(selected, "no model of this backend fits the scenario")
        for variant, path in selected:
            with self.subTest(model=f"{path.parent.name}/{path.name}"):
                sim = self.drive(variant, path, steps)
                if executions is not None:
                    self.assertEqual(sim.executions, executions(variant))


def _batched(v: Variant) -> bool:
    """Whether the model has a batch dimension."""
    return v.max_batch > 0


class SequenceContractTest(ContractTestCase):
    """The upstream clients' sequences (L0_sequence_batcher, dyna) on every model."""

    def test_simple_sequence(self):
        """test_simple_sequence: 1..9 -> 45, one request per execution."""
        steps = sequence(5, list(range(1, 10)), [1, 3, 6, 10, 15, 21, 28, 36, 45])
        self.run_models(steps, lambda v: [1] * 9)

    def test_length1_sequence(self):
        """test_length1_sequence: one START+END request, 42 -> 42."""
        self.run_models(sequence(99, [42], [42]), lambda v: [1])

    def test_no_sequence_end(self):
        """A second START on a live sequence resets its state: 1, 2, 42 (start), 9 -> 51."""
        steps = [{4566: (1, "start", 1)}, {4566: (2, "", 3)}, {4566: (42, "start", 42)},
                 {4566: (9, "end", 51)}]
        self.run_models(steps, lambda v: [1] * 4)

    def test_end_then_new_start(self):
        """After END the id is free; a new START begins afresh: 1, 2 -> 3; 11111, 11113 -> 22224."""
        steps = sequence(1001, [1, 2], [1, 3]) + sequence(1001, [11111, 11113], [11111, 22224])
        self.run_models(steps, lambda v: [1] * 4)

    def test_half_batch(self):
        """test_half_batch: 987: 1,2,3,4 -> 10 and 988: 0,9,5,13 -> 27 side by side."""
        steps = parallel(sequence(987, [1, 2, 3, 4], [1, 3, 6, 10]),
                         sequence(988, [0, 9, 5, 13], [0, 9, 14, 27]))
        self.run_models(steps, lambda v: [2] * 4 if _batched(v) else [1] * 8)

    def test_full_batch(self):
        """test_full_batch: x+1, x+2, x+3 for x = 0, 10, 110, 1110 -> 6, 36, 336, 3336."""
        steps = parallel(sequence(1001, [1, 2, 3], [1, 3, 6]),
                         sequence(1002, [11, 12, 13], [11, 23, 36]),
                         sequence(1003, [111, 112, 113], [111, 223, 336]),
                         sequence(1004, [1111, 1112, 1113], [1111, 2223, 3336]))
        self.run_models(steps, lambda v: [4] * 3 if _batched(v) else [1] * 12)

    def test_skip_batch(self):
        """test_skip_batch: 1002 and 1004 first; the later two end early -> 4, 50, 224, 4450."""
        steps = parallel(sequence(1002, [11, 12, 13, 14], [11, 23, 36, 50]),
                         sequence(1004, [1111, 1112, 1113, 1114], [1111, 2223, 3336, 4450]),
                         sequence(1001, [1, 3], [1, 4]),
                         sequence(1003, [111, 113], [111, 224]))
        self.run_models(steps, lambda v: [4, 4, 2, 2] if _batched(v) else [1] * 12)

    def test_padding_between_live_slots(self):
        """Slots 0 and 2 end early: direct pads them with null requests, oldest does not."""
        steps = parallel(sequence(1001, [1, 3], [1, 4]),
                         sequence(1002, [11, 12, 13, 14], [11, 23, 36, 50]),
                         sequence(1003, [111, 113], [111, 224]),
                         sequence(1004, [1111, 1112, 1113, 1114], [1111, 2223, 3336, 4450]))

        def executions(v: Variant) -> List[int]:
            if not _batched(v):
                return [1] * 12
            return [4, 4, 2, 2] if v.dyna else [4] * 4

        self.run_models(steps, executions)

    def test_ragged_batch(self):
        """test_ragged_batch: widths 2, 2, 1, 3 accumulate element-wise -> 6, 36, 336, 3336."""
        steps = parallel(sequence(1001, [[1] * 2, [2] * 2, [3] * 2], [1, 3, 6]),
                         sequence(1002, [[11] * 2, [12] * 2, [13] * 2], [11, 23, 36]),
                         sequence(1003, [[111], [112], [113]], [111, 223, 336]),
                         sequence(1004, [[1111] * 3, [1112] * 3, [1113] * 3], [1111, 2223, 3336]))
        # Three shapes per round, each execution padded to 4 slots: upstream's {4: 9}.
        self.run_models(steps, lambda v: [4] * 9, only=lambda v: v.variable)

    def test_new_width_after_end(self):
        """A sequence restarted on the same id may change width: state shape resets too."""
        steps = sequence(1001, [[1, 1], [2, 2]], [1, 3]) + sequence(1001, [[5, 5, 5]], [5])
        self.run_models(steps, lambda v: [1] * 3, only=lambda v: v.variable)


class TritonErrorTest(ContractTestCase):
    """Requests Triton rejects before the model sees them (reference section 4.4)."""

    def for_each_model(self, check: Callable[[Variant, triton_sim.SequenceBatcherSim], None]):
        """Run `check(variant, fresh sim)` for every model, one subtest each."""
        for variant, path in self.models:
            with self.subTest(model=f"{path.parent.name}/{path.name}"):
                check(variant, self.simulate(variant, path))

    def test_batch_size(self):
        """test_batch_size: a batch of 2 on a batched model is refused."""
        def check(variant: Variant, sim: triton_sim.SequenceBatcherSim) -> None:
            if _batched(variant):
                with self.assertRaisesRegex(triton_sim.TritonError, "must specify batch-size 1"):
                    sim.infer(27, 1, start=True, batch_size=2)
        self.for_each_model(check)

    def test_no_correlation_id(self):
        """test_no_correlation_id: correlation id 0 is refused."""
        def check(_: Variant, sim: triton_sim.SequenceBatcherSim) -> None:
            with self.assertRaisesRegex(triton_sim.TritonError, "non-zero or non-empty"):
                sim.infer(0, 1, start=True)
        self.for_each_model(check)

    def test_no_sequence_start(self):
        """test_no_sequence_start: the first request of a sequence needs START."""
        def check(_: Variant, sim: triton_sim.SequenceBatcherSim) -> None:
            with self.assertRaisesRegex(triton_sim.TritonError,
                                        "sequence 37469245 .* must specify the START flag"):
                sim.infer(37469245, 1)
        self.for_each_model(check)

    def test_no_sequence_start2(self):
        """test_no_sequence_start2: after END, a request without START is refused."""
        def check(variant: Variant, sim: triton_sim.SequenceBatcherSim) -> None:
            outputs = [sim.infer(3, 1, start=True), sim.infer(3, 2), sim.infer(3, 3, end=True)]
            self.check_response(variant, outputs[-1], 3, 6)
            with self.assertRaisesRegex(triton_sim.TritonError, "sequence 3 .* START flag"):
                sim.infer(3, 55)
            self.assertEqual(sim.executions, [1, 1, 1])
        self.for_each_model(check)

    def test_state_update_matches_backend(self):
        """The generator's view of StateUpdate agrees with the backend Triton would use."""
        def check(variant: Variant, sim: triton_sim.SequenceBatcherSim) -> None:
            self.assertEqual(sim.updates_state, family_info(variant).updates_state)
        self.for_each_model(check)


_ONNX_ELEM = {"TYPE_FP32": onnx.TensorProto.FLOAT, "TYPE_INT32": onnx.TensorProto.INT32,
              "TYPE_STRING": onnx.TensorProto.STRING, "TYPE_UINT64": onnx.TensorProto.UINT64}
_CONTROL_ELEM = {"fp32_false_true": onnx.TensorProto.FLOAT,
                 "int32_false_true": onnx.TensorProto.INT32,
                 "bool_false_true": onnx.TensorProto.BOOL}


@unittest.skipUnless(BACKEND == "onnx", "ONNX graph checks")
class OnnxGraphTest(ContractTestCase):
    """The ONNX graph matches its config (CONTRACT.md section 2, model-side rules)."""

    def _expected_types(self, config) -> Dict[str, Tuple[int, List[int]]]:
        """Graph input/output name -> (element type, dims without batch)."""
        data = (_ONNX_ELEM[mc.DataType.Name(config.input[0].data_type)],
                list(config.input[0].dims))
        types = {n: data for n in ("INPUT", "OUTPUT", "INPUT_STATE", "OUTPUT_STATE")}
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

    def test_graph_matches_config(self):
        """Inputs, outputs, element types, symbolic dims, pinned versions, full check."""
        for variant, path in self.models:
            with self.subTest(model=f"{path.parent.name}/{path.name}"):
                model = onnx.load(str(path / "1" / "model.onnx"))
                config = parse_config((path / "config.pbtxt").read_text())
                names = {"INPUT_STATE", "INPUT", "START", "READY"}
                if variant.dyna:
                    names |= {"END", "CORRID"}
                self.assertEqual({i.name for i in model.graph.input}, names)
                self.assertEqual({o.name for o in model.graph.output}, {"OUTPUT", "OUTPUT_STATE"})
                types = self._expected_types(config)
                for value in list(model.graph.input) + list(model.graph.output):
                    self._check_value(value, *types[value.name], batched=variant.max_batch > 0)
                self.assertEqual(model.ir_version, DEFAULT_ONNX_IR_VERSION)
                self.assertEqual({o.domain: o.version for o in model.opset_import},
                                 {"": DEFAULT_ONNX_OPSET})
                onnx.checker.check_model(model, full_check=True)


if __name__ == "__main__":
    unittest.main()
