"""Unit tests of `tests.triton_sim` against hand-written configs and numpy models.

The simulation is what the model-contract tests trust to stand in for
Triton, so its own behaviour is pinned here to the reference's section 4
(control values, state creation and hand-back, null requests, batching by
shape, oldest strategy, Triton's errors), also for configs with several
`state` entries, without any generated model.
"""

import pathlib
import shutil
import struct
import tempfile
import unittest
from typing import Dict, List

import numpy as np

from tests import triton_sim

CONFIG = """name: "m"
platform: "{platform}"
max_batch_size: {max_batch}
input {{ name: "INPUT" data_type: {dtype} dims: [{dims}] }}
output {{ name: "OUTPUT" data_type: {dtype} dims: [{dims}] }}
sequence_batching {{
  {strategy}
  control_input {{ name: "START" control {{ kind: CONTROL_SEQUENCE_START {field}: [0, 1] }} }}
  control_input {{ name: "END" control {{ kind: CONTROL_SEQUENCE_END {field}: [0, 1] }} }}
  control_input {{ name: "READY" control {{ kind: CONTROL_SEQUENCE_READY {field}: [0, 1] }} }}
  control_input {{ name: "CORRID" control {{ kind: CONTROL_SEQUENCE_CORRID data_type: {corrid} }} }}
  state {{ input_name: "INPUT_STATE" output_name: "OUTPUT_STATE" data_type: {dtype}
          dims: [{dims}] {initial} }}
  {extra_states}
}}
"""
# A second and third state entry (INT32, dims [1]); `{initial}` is each one's initial_state.
EXTRA_STATE = """state {{ input_name: "INPUT_STATE_{k}" output_name: "OUTPUT_STATE_{k}"
  data_type: TYPE_INT32 dims: [1] {initial} }}"""
ZERO_INITIAL = 'initial_state { name: "i" data_type: TYPE_INT32 dims: [1] zero_data: true }'


def file_initial(name: str) -> str:
    """An INT32 [1] initial_state read from initial_state/<name>."""
    return f'initial_state {{ name: "i" data_type: TYPE_INT32 dims: [1] data_file: "{name}" }}'


class Recorder:
    """A numpy model per the contract (X + S when READY and not START) that keeps its feeds."""

    def __init__(self, gate: bool = True) -> None:
        """No feed seen yet; without `gate` the model is X + S (initial-state models)."""
        self.feeds: List[Dict[str, np.ndarray]] = []
        self.gate = gate

    def __call__(self, feed: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """Record the feed and compute the contract's arithmetic."""
        self.feeds.append(feed)
        carry = np.logical_and(feed["READY"] != 0, feed["START"] == 0) if self.gate else True
        result = np.where(carry, feed["INPUT"] + feed["INPUT_STATE"], feed["INPUT"])
        return {"OUTPUT": result, "OUTPUT_STATE": result.copy()}


class MultiRecorder(Recorder):
    """Several states: pair k is (k + 1) * X + S_k (gated), OUTPUT sum of (k + 1) * each."""

    def __init__(self, pairs: int, gate: bool = True) -> None:
        """A model of `pairs` state pairs INPUT_STATE[_k] -> OUTPUT_STATE[_k]."""
        super().__init__(gate)
        self.pairs = pairs

    def __call__(self, feed: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """Record the feed; compute every pair and the sum."""
        self.feeds.append(feed)
        carry = np.logical_and(feed["READY"] != 0, feed["START"] == 0) if self.gate else True
        outputs = {}
        for k in range(self.pairs):
            suffix = f"_{k}" if k else ""
            scaled = (k + 1) * feed["INPUT"]
            outputs[f"OUTPUT_STATE{suffix}"] = np.where(
                carry, scaled + feed[f"INPUT_STATE{suffix}"], scaled)
        outputs["OUTPUT"] = sum((k + 1) * state for k, state in enumerate(outputs.values()))
        return outputs


class SimTestCase(unittest.TestCase):
    """Writes one model directory per test."""

    def setUp(self) -> None:
        """A fresh temporary model directory."""
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="triton_sim_test."))
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)

    def sim(self, *, max_batch=4, dtype="TYPE_INT32", dims="1", field="int32_false_true",
            corrid="TYPE_UINT64", strategy="", initial="", platform="onnxruntime_onnx",
            extra_states=(), runner=None, **kwargs) -> triton_sim.SequenceBatcherSim:
        """Write config.pbtxt from the arguments and wrap `runner` (default a Recorder).

        `extra_states` holds the initial_state text of each state entry after
        the first (INPUT_STATE_1, INPUT_STATE_2, ...).
        """
        extra = "\n  ".join(EXTRA_STATE.format(k=k, initial=text)
                            for k, text in enumerate(extra_states, 1))
        (self.dir / "config.pbtxt").write_text(CONFIG.format(
            platform=platform, max_batch=max_batch, dtype=dtype, dims=dims, field=field,
            corrid=corrid, strategy=strategy, initial=initial, extra_states=extra))
        self.runner = runner or Recorder()
        return triton_sim.SequenceBatcherSim(self.dir, self.runner, **kwargs)

    def controls(self, feed: Dict[str, np.ndarray]) -> List[tuple]:
        """(START, END, READY, CORRID) per row of a feed."""
        columns = [feed[n].reshape(-1).tolist() for n in ("START", "END", "READY", "CORRID")]
        return list(zip(*columns, strict=True))


class ControlTest(SimTestCase):
    """Control and CORRID values (reference section 4.5)."""

    def test_control_table(self):
        """START only, middle, END only, START+END as (START, END, READY)."""
        sim = self.sim(max_batch=0)
        sim.infer(7, 1, start=True)
        sim.infer(7, 2)
        sim.infer(7, 3, end=True)
        sim.infer(7, 4, start=True, end=True)
        self.assertEqual([self.controls(f) for f in self.runner.feeds],
                         [[(1, 0, 1, 7)], [(0, 0, 1, 7)], [(0, 1, 1, 7)], [(1, 1, 1, 7)]])
        self.assertEqual(self.runner.feeds[0]["START"].shape, (1,))

    def test_types_from_fields(self):
        """fp32 / bool fields give float32 / bool controls; INT32 CORRID keeps the low bits."""
        for field, dtype in (("fp32_false_true", np.float32), ("bool_false_true", np.bool_)):
            with self.subTest(field=field):
                sim = self.sim(field=field, corrid="TYPE_INT32")
                sim.infer(2**32 + 5, 1, start=True)
                feed = self.runner.feeds[0]
                self.assertEqual((feed["START"].dtype, feed["START"].shape), (dtype, (1, 1)))
                self.assertEqual((feed["CORRID"].dtype, int(feed["CORRID"][0, 0])), (np.int32, 5))

    def test_null_requests(self):
        """Empty slots below the highest busy one are padded: READY 0, CORRID 0, data shape."""
        sim = self.sim(max_batch=4, dims="-1")
        sim.step({1: ([1, 1], "start"), 2: ([2, 2], "start"), 3: ([3, 3], "start")})
        sim.step({1: ([1, 1], "end"), 3: ([3, 3], "")})
        feed = self.runner.feeds[-1]
        self.assertEqual(self.controls(feed), [(0, 1, 1, 1), (0, 0, 0, 0), (0, 0, 1, 3)])
        self.assertEqual((feed["INPUT"].shape, feed["INPUT_STATE"].shape), ((3, 2), (3, 2)))
        self.assertEqual(sim.executions, [3, 3])


class StateTest(SimTestCase):
    """State creation and hand-back (reference sections 4.2 and 4.3)."""

    def test_uninitialized_state_is_garbage(self):
        """Without an initial_state the START state is random, shaped [1] + dims(-1 -> 1)."""
        sim = self.sim(dims="-1")
        sim.infer(1, [5, 5, 5], start=True)
        state = self.runner.feeds[0]["INPUT_STATE"]
        self.assertEqual(state.shape, (1, 1))
        self.assertNotEqual(int(state[0, 0]), 0)

    def test_output_state_becomes_input_state(self):
        """Updating backends: each OUTPUT_STATE, shape included, is the next INPUT_STATE."""
        sim = self.sim(dims="-1", initial='initial_state { name: "i" data_type: TYPE_INT32'
                                         ' dims: [1] zero_data: true }')
        outputs = [sim.infer(1, [v, v], start=v == 1).output.tolist() for v in (1, 2, 3)]
        self.assertEqual(outputs, [[[1, 1]], [[3, 3]], [[6, 6]]])
        self.assertEqual([f["INPUT_STATE"].tolist() for f in self.runner.feeds],
                         [[[0]], [[1, 1]], [[3, 3]]])

    def test_no_state_update_for_python(self):
        """python/tensorflow backends never hand the state back: it stays at its START value."""
        sim = self.sim(platform="tensorflow_savedmodel", initial='initial_state { name: "i"'
                       ' data_type: TYPE_INT32 dims: [1] zero_data: true }')
        self.assertFalse(sim.updates_state)
        outputs = [int(sim.infer(1, v, start=v == 1).output[0, 0]) for v in (1, 2, 3)]
        self.assertEqual(outputs, [1, 2, 3])

    def test_file_initial_state(self):
        """Numeric files are raw LE values."""
        (self.dir / "initial_state").mkdir()
        (self.dir / "initial_state" / "f").write_bytes(struct.pack("<i", 100))
        sim = self.sim(initial='initial_state { name: "i" data_type: TYPE_INT32 dims: [1]'
                               ' data_file: "f" }', runner=Recorder(gate=False))
        self.assertEqual(int(sim.infer(1, 1, start=True).output[0, 0]), 101)


STRING_FILE = 'initial_state { name: "i" data_type: TYPE_STRING dims: [1] data_file: "f" }'
CORE_ERROR = ("Failed to initialize sequence state: The total byte size must be a multiple of"
              " 4 when setting the sequence state to zero.")


def echo_state(feed: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """A model returning the state it was fed as OUTPUT and OUTPUT_STATE."""
    return {"OUTPUT": feed["INPUT_STATE"], "OUTPUT_STATE": feed["INPUT_STATE"]}


class StringStateFileTest(SimTestCase):
    """Triton core zeroes string states, and fails a start when that is impossible."""

    def string_sim(self, blob: bytes, dims: str = "1") -> triton_sim.SequenceBatcherSim:
        """A TYPE_STRING model whose state file initial_state/f holds `blob`."""
        (self.dir / "initial_state").mkdir(exist_ok=True)
        (self.dir / "initial_state" / "f").write_bytes(blob)
        initial = STRING_FILE.replace("dims: [1]", f"dims: [{dims}]")
        return self.sim(dtype="TYPE_STRING", dims=dims, initial=initial, runner=echo_state)

    def test_upstream_harness_file_is_one_empty_string(self):
        """Upstream's 4-byte int32 100 (64 00 00 00, no valid BYTES tensor) is zeroed: ""."""
        sim = self.string_sim(b"d\0\0\0")
        self.assertEqual(sim.infer(1, 1, start=True).output.tolist(), [[b""]])

    def test_one_empty_element_per_state_element(self):
        """Dims [2, 3]: 24 zero bytes are six empty strings, fed with shape [1, 2, 3]."""
        sim = self.string_sim(bytes(24), dims="2, 3")
        self.assertEqual(sim.infer(1, [["1"] * 3] * 2, start=True).output.tolist(),
                         [[[b""] * 3] * 2])

    def test_old_seven_byte_file_fails_every_start(self):
        """Length 3 + "100" (7 bytes, this project's old file): core's error at START."""
        sim = self.string_sim(struct.pack("<I", 3) + b"100")
        for corrid in (1, 2):
            with self.assertRaises(triton_sim.SequenceStateError) as caught:
                sim.infer(corrid, 1, start=True)
            self.assertTrue(str(caught.exception).startswith(CORE_ERROR), caught.exception)
            self.assertIn("7 bytes", str(caught.exception))
        self.assertEqual(sim.executions, [])

    def test_wrong_element_count_after_zeroing(self):
        """8 bytes for a one-element state zero into two strings: not a usable state."""
        with self.assertRaisesRegex(triton_sim.SimError, "2 empty strings.*1 elements"):
            self.string_sim(bytes(8))


class MultiStateTest(SimTestCase):
    """Several `state` entries: own initial state, own buffer, own hand-back each."""

    def write_files(self, **values: int) -> None:
        """initial_state/<name> holding one LE int32 per keyword."""
        (self.dir / "initial_state").mkdir(exist_ok=True)
        for name, value in values.items():
            (self.dir / "initial_state" / name).write_bytes(struct.pack("<i", value))

    def file_sim(self, **kwargs) -> triton_sim.SequenceBatcherSim:
        """Three INT32 states initialised from files holding 100, 200 and 300."""
        self.write_files(f0=100, f1=200, f2=300)
        return self.sim(initial=file_initial("f0"), runner=MultiRecorder(3, gate=False),
                        extra_states=(file_initial("f1"), file_initial("f2")), **kwargs)

    def states_fed(self) -> List[List[int]]:
        """(INPUT_STATE, INPUT_STATE_1, INPUT_STATE_2) of each recorded feed, row 0."""
        names = ("INPUT_STATE", "INPUT_STATE_1", "INPUT_STATE_2")
        return [[int(f[n].reshape(-1)[0]) for n in names] for f in self.runner.feeds]

    def test_each_state_has_its_own_file_and_hand_back(self):
        """1, 2, 3 from START: 101/202/303, 103/206/309, 106/212/318; each fed back alone."""
        sim = self.file_sim()
        self.assertEqual([e.input_name for e in sim.state_entries],
                         ["INPUT_STATE", "INPUT_STATE_1", "INPUT_STATE_2"])
        responses = [sim.infer(1, v, start=v == 1) for v in (1, 2, 3)]
        states = [[int(a[0, 0]) for a in r.states.values()] for r in responses]
        self.assertEqual(states, [[101, 202, 303], [103, 206, 309], [106, 212, 318]])
        self.assertEqual([int(r.output[0, 0]) for r in responses], [1414, 1442, 1484])
        self.assertEqual(list(responses[0].states),
                         ["OUTPUT_STATE", "OUTPUT_STATE_1", "OUTPUT_STATE_2"])
        self.assertIs(responses[0].output_state, responses[0].states["OUTPUT_STATE"])
        self.assertEqual(self.states_fed(), [[100, 200, 300], [101, 202, 303], [103, 206, 309]])

    def test_start_resets_every_state(self):
        """A second START gives every entry its own initial value again."""
        sim = self.file_sim()
        sim.infer(1, 5, start=True)
        sim.infer(1, 7, start=True)
        self.assertEqual(self.states_fed(), [[100, 200, 300], [100, 200, 300]])

    def test_no_hand_back_without_state_update(self):
        """Backends without StateUpdate: every state input keeps its START value."""
        sim = self.file_sim(platform="tensorflow_savedmodel", max_batch=0)
        self.assertFalse(sim.updates_state)
        for value in (1, 2, 3):
            sim.infer(1, value, start=value == 1)
        self.assertEqual(self.states_fed(), [[100, 200, 300]] * 3)

    def test_mixed_initial_states_and_nulls(self):
        """No initial state (garbage), zero and file entries side by side; nulls pad all."""
        self.write_files(f2=300)
        sim = self.sim(runner=MultiRecorder(3, gate=False),
                       extra_states=(ZERO_INITIAL, file_initial("f2")))
        sim.step({1: (1, "start"), 2: (2, "start")})
        sim.step({2: (3, "")})
        first, second = self.runner.feeds
        self.assertNotEqual(int(first["INPUT_STATE"][0, 0]), 0)  # uninitialized memory
        self.assertEqual(first["INPUT_STATE_1"].tolist(), [[0], [0]])
        self.assertEqual(first["INPUT_STATE_2"].tolist(), [[300], [300]])
        self.assertEqual(self.controls(second), [(0, 0, 0, 0), (0, 0, 1, 2)])
        self.assertEqual(second["INPUT_STATE_1"][1:].tolist(), [[4]])  # 2 * 2 + 0
        self.assertEqual(second["INPUT_STATE_2"][1:].tolist(), [[306]])  # 3 * 2 + 300
        self.assertEqual({f["INPUT_STATE_2"].shape for f in self.runner.feeds}, {(2, 1)})

    def test_every_state_output_is_required(self):
        """A model that leaves out one state output fails with its name."""
        def runner(feed):
            outputs = MultiRecorder(2)(feed)
            del outputs["OUTPUT_STATE_1"]
            return outputs

        sim = self.sim(runner=runner, extra_states=("",))
        with self.assertRaisesRegex(triton_sim.ModelOutputError, "'OUTPUT_STATE_1' missing"):
            sim.infer(1, 1, start=True)

    def test_repeated_state_names_refused(self):
        """Two state entries may not share a tensor name."""
        (self.dir / "config.pbtxt").write_text(CONFIG.format(
            platform="onnxruntime_onnx", max_batch=0, dtype="TYPE_INT32", dims="1",
            field="int32_false_true", corrid="TYPE_UINT64", strategy="", initial="",
            extra_states=EXTRA_STATE.format(k=1, initial="").replace("_1", "")))
        with self.assertRaisesRegex(triton_sim.SimError, r"\['INPUT_STATE', 'OUTPUT_STATE'\]"):
            triton_sim.SequenceBatcherSim(self.dir, Recorder())


# Two states whose output names sort in another order than their inputs:
# STATE_IN_A -> STATE_OUT_Z, STATE_IN_B -> STATE_OUT_Y (ENVIRONMENT.md).
CROSSED_CONFIG = """name: "m"
platform: "onnxruntime_onnx"
max_batch_size: 0
input { name: "INPUT" data_type: TYPE_INT32 dims: [1] }
output { name: "OUTPUT" data_type: TYPE_INT32 dims: [1] }
sequence_batching {
  control_input { name: "START" control { kind: CONTROL_SEQUENCE_START int32_false_true: [0, 1] } }
  control_input { name: "READY" control { kind: CONTROL_SEQUENCE_READY int32_false_true: [0, 1] } }
  state { input_name: "STATE_IN_A" output_name: "STATE_OUT_Z" data_type: TYPE_INT32 dims: [1]
          initial_state { name: "a" data_type: TYPE_INT32 dims: [1] zero_data: true } }
  state { input_name: "STATE_IN_B" output_name: "STATE_OUT_Y" data_type: TYPE_INT32 dims: [1]
          initial_state { name: "b" data_type: TYPE_INT32 dims: [1] zero_data: true } }
}
"""


def crossed_model(feed: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """Z = S_A + INPUT, Y = S_B + 10 * INPUT, OUTPUT = Z + 1000 * Y (the measured model)."""
    z = feed["STATE_IN_A"] + feed["INPUT"]
    y = feed["STATE_IN_B"] + 10 * feed["INPUT"]
    return {"OUTPUT": z + 1000 * y, "STATE_OUT_Z": z, "STATE_OUT_Y": y}


class PairingTest(SimTestCase):
    """Which input state an output state updates: core's name order, or the config's pairs."""

    def crossed(self, pairing: str) -> List[int]:
        """OUTPUT for INPUT 1, 2, 3, 4 on the crossed-name model."""
        (self.dir / "config.pbtxt").write_text(CROSSED_CONFIG)
        sim = triton_sim.SequenceBatcherSim(self.dir, crossed_model, pairing=pairing)
        return [int(sim.infer(1, x, start=x == 1).output[0]) for x in (1, 2, 3, 4)]

    def test_name_order_reproduces_the_measured_swap(self):
        """Measured on tritonserver 2.51 + onnxruntime: 10001, 21012, 42024, 64046."""
        self.assertEqual(self.crossed(triton_sim.PAIR_BY_NAME_ORDER), [10001, 21012, 42024, 64046])

    def test_config_pairing_gives_the_right_sums(self):
        """A core pairing by config entry would answer 10001, 30003, 60006, 100010."""
        self.assertEqual(self.crossed(triton_sim.PAIR_BY_CONFIG), [10001, 30003, 60006, 100010])

    def test_default_is_released_triton(self):
        """Without a pairing argument the simulation pairs as released Triton does."""
        (self.dir / "config.pbtxt").write_text(CROSSED_CONFIG)
        sim = triton_sim.SequenceBatcherSim(self.dir, crossed_model)
        self.assertEqual([int(sim.infer(1, x, start=x == 1).output[0]) for x in (1, 2)],
                         [10001, 21012])

    def test_names_sorting_alike_are_not_exchanged(self):
        """INPUT_STATE[_k] -> OUTPUT_STATE[_k]: both rules hand each state back to itself."""
        for pairing in (triton_sim.PAIR_BY_NAME_ORDER, triton_sim.PAIR_BY_CONFIG):
            with self.subTest(pairing=pairing):
                sim = self.sim(runner=MultiRecorder(3), extra_states=("", ""), pairing=pairing)
                outputs = [int(sim.infer(1, x, start=x == 1).output[0, 0]) for x in (1, 2, 3, 4)]
                self.assertEqual(outputs, [14, 42, 84, 140])

    def test_unknown_pairing_refused(self):
        """A pairing name other than the two is an error naming both."""
        with self.assertRaisesRegex(ValueError, "'name_order'.*'config'"):
            self.sim(pairing="sorted")


class BatchingTest(SimTestCase):
    """Slots, shapes and strategies (reference section 4.6)."""

    def test_ragged_shapes_run_apart(self):
        """Widths 2, 2, 1, 3: three executions per round, each padded to 4 (upstream {4: 9})."""
        sim = self.sim(dims="-1")
        for round_ in range(3):
            flags = "start" if round_ == 0 else ""
            sim.step({1: ([1] * 2, flags), 2: ([2] * 2, flags), 3: ([3], flags),
                      4: ([4] * 3, flags)})
        self.assertEqual(sim.executions, [4] * 9)

    def test_oldest_has_no_nulls(self):
        """Oldest: only real requests, READY always 1."""
        sim = self.sim(strategy="oldest { max_candidate_sequences: 4 preferred_batch_size: [4] }")
        sim.step({1: (1, "start"), 2: (2, "start"), 3: (3, "start")})
        sim.step({1: (1, "end"), 3: (3, "end")})
        self.assertEqual(self.controls(self.runner.feeds[-1]), [(0, 1, 1, 1), (0, 1, 1, 3)])

    def _grown_state_first(self, platform):
        """Sequence 1 (state grown to [1, 2], slot 0) batched with sequence 2's START ([1, 1]).

        The initial state is a file holding 100, as in the variable file-state repository.
        """
        (self.dir / "initial_state").mkdir()
        (self.dir / "initial_state" / "f").write_bytes(struct.pack("<i", 100))
        sim = self.sim(dims="-1", platform=platform, runner=Recorder(gate=False),
                       initial=file_initial("f"))
        sim.infer(1, [1, 1], start=True)
        return sim, {1: ([2, 2], ""), 2: ([1, 1], "start")}

    def test_grown_state_first_fails_the_batch_on_onnxruntime(self):
        """Core batches equal INPUT shapes whatever the states; ORT gets too few bytes."""
        sim, requests = self._grown_state_first("onnxruntime_onnx")
        with self.assertRaisesRegex(triton_sim.TritonError,
                                    "not enough space: expected 16, got 12"):
            sim.step(requests)

    def test_grown_state_first_leaves_elements_unset_on_pytorch(self):
        """The pytorch backend runs the batch: the START row's second state element is unset."""
        sim, requests = self._grown_state_first("pytorch_libtorch")
        answers = sim.step(requests)
        self.assertEqual(answers[1].output.tolist(), [[103, 103]])
        # A right server: [[101, 101]]; measured [[101, 1]] quiet, [[111, -222740433]] loaded.
        self.assertEqual(answers[2].output[0, 0], 101)
        self.assertNotEqual(answers[2].output[0, 1], 101)
        self.assertEqual(sim.executions[-1], 2)

    def test_fresh_state_first_misreads_the_later_row(self):
        """A START row ([1, 1]) in slot 0 before a grown state: the later row reads one element."""
        sim = self.sim(dims="-1", initial=ZERO_INITIAL, runner=Recorder(gate=False))
        sim.step({1: ([1, 1], "start"), 2: ([1, 2], "start")})  # slots 0 and 1
        sim.infer(1, [1, 1], end=True)  # slot 0 free again
        answers = sim.step({3: ([7, 7], "start"), 2: ([10, 10], "")})  # 3 takes slot 0
        self.assertEqual(answers[3].output.tolist(), [[7, 7]])
        self.assertEqual(answers[2].output.tolist(), [[11, 11]])  # a right server: [[11, 12]]

    def test_slots_run_out(self):
        """A backlog is not simulated: a fifth sequence on 4 slots is an error."""
        sim = self.sim(max_batch=0, instances=4)
        sim.step({i: (i, "start") for i in range(1, 5)})
        self.assertEqual(sim.executions, [1] * 4)
        with self.assertRaisesRegex(triton_sim.SimError, "no free sequence slot"):
            sim.infer(5, 5, start=True)


class TritonErrorTest(SimTestCase):
    """Errors Triton returns itself (reference section 4.4)."""

    def test_errors(self):
        """Batch size, correlation id 0, missing START; a second START resets."""
        sim = self.sim(initial='initial_state { name: "i" data_type: TYPE_INT32 dims: [1]'
                               ' zero_data: true }')
        with self.assertRaisesRegex(triton_sim.TritonError, "must specify batch-size 1"):
            sim.infer(1, 1, start=True, batch_size=2)
        with self.assertRaisesRegex(triton_sim.TritonError, "non-zero or non-empty"):
            sim.infer(0, 1, start=True)
        with self.assertRaisesRegex(triton_sim.TritonError, "sequence 9 to model 'm' must"
                                    " specify the START flag"):
            sim.infer(9, 1)
        outputs = [sim.infer(9, 5, start=True), sim.infer(9, 1, start=True), sim.infer(9, 2)]
        self.assertEqual([int(r.output[0, 0]) for r in outputs], [5, 1, 3])
        self.assertEqual([f["INPUT_STATE"].tolist() for f in self.runner.feeds],
                         [[[0]], [[0]], [[1]]])


if __name__ == "__main__":
    unittest.main()
