"""Unit tests of `verification.triton_sim` against hand-written configs and numpy models.

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

import ml_dtypes
import numpy as np
from tritonclient.grpc import model_config_pb2 as mc

from generators.model_config import build_config, config_text
from generators.variant import Variant
from verification import catalogue, predictions, served_config, triton_sim
from verification import expectations as exp

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
    """Catalogue entry 8586: core pairs states by name order; fixed, by the config's pairs."""

    def crossed(self, fixed=()) -> List[int]:
        """OUTPUT for INPUT 1, 2, 3, 4 on the crossed-name model."""
        (self.dir / "config.pbtxt").write_text(CROSSED_CONFIG)
        sim = triton_sim.SequenceBatcherSim(self.dir, crossed_model, fixed=fixed)
        return [int(sim.infer(1, x, start=x == 1).output[0]) for x in (1, 2, 3, 4)]

    def test_name_order_reproduces_the_measured_swap(self):
        """Measured on tritonserver 2.51 + onnxruntime: 10001, 21012, 42024, 64046."""
        self.assertEqual(self.crossed(), [10001, 21012, 42024, 64046])

    def test_config_pairing_gives_the_right_sums(self):
        """A core pairing by config entry would answer 10001, 30003, 60006, 100010."""
        self.assertEqual(self.crossed(fixed=[triton_sim.NAME_ORDER]),
                         [10001, 30003, 60006, 100010])

    def test_names_sorting_alike_are_not_exchanged(self):
        """INPUT_STATE[_k] -> OUTPUT_STATE[_k]: both rules hand each state back to itself."""
        for fixed in ((), triton_sim.FIXED_TRITON):
            with self.subTest(fixed=sorted(fixed)):
                sim = self.sim(runner=MultiRecorder(3), extra_states=("", ""), fixed=fixed)
                outputs = [int(sim.infer(1, x, start=x == 1).output[0, 0]) for x in (1, 2, 3, 4)]
                self.assertEqual(outputs, [14, 42, 84, 140])


class FixedOnRequestTest(SimTestCase):
    """`fixed` names catalogue entries the simulation follows; anything else is refused."""

    def test_unknown_id_refused(self):
        """An id not in the catalogue is an error listing the catalogue's ids."""
        with self.assertRaisesRegex(ValueError, "unknown catalogue ids \\['9999'\\].*8586"):
            self.sim(fixed=["9999"])

    def test_unsimulated_entry_refused(self):
        """A catalogued entry the simulation does not follow cannot be fixed in it."""
        with self.assertRaisesRegex(ValueError, "follows only 8586, 6538, ragged-state-batch,"
                                    " config-initial-state-dims, 3901, pytorch-scalar-output"):
            self.sim(fixed=["ort-state-names"])

    def test_every_simulated_entry_is_a_fixable_catalogue_bug(self):
        """SIMULATED is the catalogue's simulated bugs, nothing more or less."""
        entries = catalogue.load()
        self.assertEqual(set(triton_sim.SIMULATED),
                         {i for i, e in entries.items() if e.fixable})


class InitialStateDimsTest(SimTestCase):
    """Catalogue entry 6538: a [-1] state whose file initial state has dims [3] (100, 200, 300)."""

    def dims_sim(self, platform="onnxruntime_onnx", fixed=()):
        """The reproducer's config: INT32 [-1], initial_state dims [3] from a 12-byte file."""
        (self.dir / "initial_state").mkdir()
        (self.dir / "initial_state" / "f").write_bytes(struct.pack("<3i", 100, 200, 300))
        initial = 'initial_state { name: "i" data_type: TYPE_INT32 dims: [3] data_file: "f" }'
        return self.sim(dims="-1", platform=platform, runner=Recorder(gate=False),
                        initial=initial, fixed=fixed)

    def outputs(self, sim):
        """Width-3 INPUT 1, 2, 3 in one sequence."""
        return [sim.infer(1, [x] * 3, start=x == 1, end=x == 3).output.tolist() for x in (1, 2, 3)]

    def test_released_keeps_the_first_value(self):
        """Measured on 2.51 (onnxruntime, pytorch, python): the state starts [1, 1] holding 100."""
        self.assertEqual(self.outputs(self.dims_sim()),
                         [[[101, 101, 101]], [[103, 103, 103]], [[106, 106, 106]]])

    def test_fixed_starts_from_the_whole_file(self):
        """Fixed: the state starts as the initial state's own dims, [1, 3]."""
        sim = self.dims_sim(fixed=[triton_sim.INITIAL_DIMS])
        self.assertEqual(self.outputs(sim),
                         [[[101, 201, 301]], [[103, 203, 303]], [[106, 206, 306]]])

    def test_tensorflow_refuses_the_bytes(self):
        """Measured on 2.51: the tensorflow backend compares 12 bytes with the [1, 1] shape."""
        sim = self.dims_sim(platform="tensorflow_savedmodel")
        with self.assertRaisesRegex(triton_sim.TritonError, "unexpected total byte size 12 for"
                                    " input 'INPUT_STATE', expecting 4"):
            sim.infer(1, [1] * 3, start=True)
        self.assertEqual(self.runner.feeds, [])

    def test_tensorflow_fixed_takes_the_bytes(self):
        """Fixed, the 12 bytes fill the [1, 3] state the tensorflow backend expects."""
        sim = self.dims_sim(platform="tensorflow_savedmodel", fixed=[triton_sim.INITIAL_DIMS])
        self.assertEqual(sim.infer(1, [1] * 3, start=True).output.tolist(), [[101, 201, 301]])


class PredictionTest(unittest.TestCase):
    """verification/predictions.py computes entry 8586's answers from the rule, not from a run.

    The order repository's configs (built by the generator, written here)
    give, through the simulation around the contract's arithmetic, exactly
    the hand-worked tables of verification/expectations.py.
    """

    def setUp(self) -> None:
        """A fresh folder for model configs."""
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="prediction_test."))
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)

    def model(self, backend: str, pairs: int, max_batch: int = 8) -> pathlib.Path:
        """The order repository's int32 model of `backend` with 2 or 3 crossed pairs."""
        names = ["A", "B", "C"][:pairs]
        variant = Variant.from_spec({
            "backend": backend, "dtype": "int32", "shape": [1], "max_batch": max_batch,
            "state_pairs": [[f"INPUT_STATE_{n}", f"OUTPUT_STATE_{names[(i + 1) % pairs]}"]
                            for i, n in enumerate(names)]})
        folder = self.dir / f"{backend}_{pairs}_{max_batch}"
        folder.mkdir()
        (folder / "config.pbtxt").write_text(config_text(build_config(variant)))
        return folder

    def worked(self, folder, backend, fixed=()):
        """OUTPUT for the worked example INPUT 1, 2, 3, 4."""
        rounds = [{1: (x, " ".join(f for f, on in (("start", x == 1), ("end", x == 4)) if on))}
                  for x in exp.MULTI_WORKED]
        return tuple(int(a.reshape(-1)[0])
                     for a in predictions.answers(folder, backend, rounds, fixed=fixed)[1])

    def test_released_is_the_hand_worked_table(self):
        """2 pairs 5, 14, 28, 46; 3 pairs 14, 39, 75, 125 (onnx and libtorch, batched or not)."""
        for backend in ("onnx", "libtorch"):
            for pairs in (2, 3):
                for max_batch in (0, 8):
                    with self.subTest(backend=backend, pairs=pairs, max_batch=max_batch):
                        folder = self.model(backend, pairs, max_batch)
                        self.assertEqual(self.worked(folder, backend),
                                         exp.MULTI_STATE_NAME_ORDER_BUG[pairs]["worked"])

    def test_fixed_and_own_state_families_are_the_contract(self):
        """A fixed core, or a family keeping its own state, gives the contract's table."""
        for backend, fixed in (("onnx", triton_sim.FIXED_TRITON), ("python", ())):
            with self.subTest(backend=backend):
                folder = self.model(backend, 2)
                self.assertEqual(self.worked(folder, backend, fixed),
                                 exp.MULTI_STATE_EXPECTED["none"][2]["worked"])

    def test_scalar_state_on_onnx(self):
        """Entry 3901 on the generated onnx scalar models: refused at every step; fixed 1, 3, 6, 10."""
        rounds = [{1: (x, "start" if x == 1 else "end" if x == 4 else "")} for x in (1, 2, 3, 4)]
        for max_batch in (8, 0):
            with self.subTest(max_batch=max_batch):
                variant = Variant.from_spec({"backend": "onnx", "dtype": "int32", "shape": [1],
                                             "max_batch": max_batch, "initial_state": "zero",
                                             "state_dims": []})
                folder = self.dir / variant.name
                folder.mkdir()
                (folder / "config.pbtxt").write_text(config_text(build_config(variant)))
                self.assertEqual(predictions.answers(folder, "onnx", rounds)[1],
                                 ["onnx runtime error 2: not enough space: expected 4, got 0"] * 4)
                fixed = predictions.answers(folder, "onnx", rounds, fixed=triton_sim.FIXED_TRITON)
                self.assertEqual([int(np.ravel(a)[0]) for a in fixed[1]], [1, 3, 6, 10])

    def test_open_elements_mark_uninitialized_memory(self):
        """The pytorch backend's unset element is left open; the rest is exact."""
        folder = self.dir / "ragged"
        (folder / "initial_state").mkdir(parents=True)
        (folder / "initial_state" / "input_state_data").write_bytes(struct.pack("<i", 100))
        variant = Variant.from_spec({"backend": "libtorch", "dtype": "int32", "shape": [-1],
                                     "max_batch": 8, "initial_state": "file"})
        (folder / "config.pbtxt").write_text(config_text(build_config(variant)))
        rounds = [{1: (np.full([2], 1), "start")},
                  {1: (np.full([2], 2), "end"), 2: (np.full([2], 1), "start")}]
        got = predictions.open_elements(folder, "libtorch", rounds)
        (a_step1, a_mask), (b_start, b_mask) = got[1][1], got[2][0]
        self.assertEqual((a_step1.tolist(), a_mask.tolist()), ([[103, 103]], [[False, False]]))
        self.assertEqual((int(b_start[0, 0]), b_mask.tolist()), (101, [[False, True]]))
        self.assertTrue(predictions.matches(np.array([[101, 1]], np.int32), b_start, b_mask))
        self.assertFalse(predictions.matches(np.array([[102, 1]], np.int32), b_start, b_mask))


class RaggedFixedTest(SimTestCase):
    """Catalogue entry ragged-state-batch fixed: only equal state shapes share an execution."""

    def test_grown_and_fresh_states_run_apart(self):
        """Step 1 (state [1, 2]) and a START ([1, 1]) run in two executions, both right."""
        (self.dir / "initial_state").mkdir()
        (self.dir / "initial_state" / "f").write_bytes(struct.pack("<i", 100))
        sim = self.sim(dims="-1", runner=Recorder(gate=False), initial=file_initial("f"),
                       fixed=[triton_sim.RAGGED_BATCH])
        sim.infer(1, [1, 1], start=True)
        answers = sim.step({1: ([2, 2], ""), 2: ([1, 1], "start")})
        self.assertEqual([answers[1].output.tolist(), answers[2].output.tolist()],
                         [[[103, 103]], [[101, 101]]])
        self.assertEqual(sim.executions[-2:], [2, 2])  # each padded to the top busy slot


class ServedConfigTest(SimTestCase):
    """Catalogue entry config-initial-state-dims: the served configuration's initial-state dims.

    And verification/served_config.py's field-by-field comparison: Triton's
    documented additions pass, the catalogued dims rendering is told apart
    from numbers, anything else is a difference naming its field.
    """

    def config(self):
        """A generated config with a file initial state and float controls."""
        variant = Variant.from_spec({"backend": "onnx", "dtype": "float32", "shape": [1],
                                     "max_batch": 8, "initial_state": "file"})
        return build_config(variant)

    def test_additions_and_renderings(self):
        """Released rendering: strings; fixed: numbers; both with Triton's additions."""
        config = self.config()
        for strings, rendering in ((True, served_config.DIMS_AS_STRINGS),
                                   (False, served_config.DIMS_AS_NUMBERS)):
            served = served_config.render(config, dims_as_strings=strings)
            self.assertEqual(served["backend"], "onnxruntime")
            self.assertEqual(served_config.compare(config, served), ([], rendering))

    def test_differences_name_their_field(self):
        """A changed value, a field Triton does not add, dims neither strings nor numbers."""
        config = self.config()
        served = served_config.render(config, dims_as_strings=True)
        served["max_batch_size"] = 4
        served["sequence_batching"]["state"][0]["dims"] = ["1"]
        served["sequence_batching"]["state"][0]["initial_state"][0]["dims"] = ["01"]
        served["instance_group"][0]["kind"] = "KIND_MODEL"
        served["surprise"] = True
        differences, rendering = served_config.compare(config, served)
        self.assertEqual(sorted(d.path for d in differences), [
            "instance_group[0].kind", "max_batch_size",
            "sequence_batching.state[0].dims[0]",
            "sequence_batching.state[0].initial_state[0].dims", "surprise"])
        self.assertIsNone(rendering)

    def test_json_numbers_match_floats(self):
        """JSON writes the float 1.0 as 1: a number is a number, a string is not."""
        config = self.config()
        served = served_config.render(config, dims_as_strings=False)
        control = served["sequence_batching"]["control_input"][0]["control"][0]
        control["fp32_false_true"] = [0, 1]
        self.assertEqual(served_config.compare(config, served)[0], [])
        control["fp32_false_true"] = ["0", "1"]
        self.assertEqual(len(served_config.compare(config, served)[0]), 2)

    def test_released_renders_strings_fixed_numbers(self):
        """Released: ["1"] beside the state's [1]; fixed: [1]."""
        for fixed, dims in (((), ["1"]), ([triton_sim.CONFIG_DIMS], [1])):
            with self.subTest(fixed=fixed):
                served = self.sim(initial=ZERO_INITIAL, fixed=fixed).served_config()
                state = served["sequence_batching"]["state"][0]
                self.assertEqual((state["dims"], state["initial_state"][0]["dims"]), ([1], dims))


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


# A config whose state may differ from INPUT [1] in type and dims; `serving` is
# the platform or backend line, `options` the state's extra fields.
LAYOUT_CONFIG = """name: "m"
{serving}
max_batch_size: {max_batch}
input {{ name: "INPUT" data_type: {input_type} dims: [1] }}
output {{ name: "OUTPUT" data_type: {state_type} dims: [1] }}
sequence_batching {{
  {strategy}
  control_input {{ name: "START" control {{ kind: CONTROL_SEQUENCE_START {field}: [0, 1] }} }}
  control_input {{ name: "END" control {{ kind: CONTROL_SEQUENCE_END {field}: [0, 1] }} }}
  control_input {{ name: "READY" control {{ kind: CONTROL_SEQUENCE_READY {field}: [0, 1] }} }}
  control_input {{ name: "CORRID" control {{ kind: CONTROL_SEQUENCE_CORRID data_type: {corrid} }} }}
  state {{ input_name: "INPUT_STATE" output_name: "OUTPUT_STATE" data_type: {state_type}
          dims: [{state_dims}] {options} }}
}}
"""
ONNX, PYTORCH = 'platform: "onnxruntime_onnx"', 'platform: "pytorch_libtorch"'
TENSORFLOW, PYTHON = 'platform: "tensorflow_savedmodel"', 'backend: "python"'
# Every numeric state type: Triton's bytes per element and the numpy type a
# buffer has in the simulation (TYPE_BF16: ml_dtypes' bfloat16, as tritonclient's).
ELEMENT_BYTES = {"TYPE_BOOL": 1, "TYPE_INT8": 1, "TYPE_INT16": 2, "TYPE_INT32": 4,
                 "TYPE_INT64": 8, "TYPE_UINT8": 1, "TYPE_UINT16": 2, "TYPE_UINT32": 4,
                 "TYPE_UINT64": 8, "TYPE_FP16": 2, "TYPE_BF16": 2, "TYPE_FP32": 4,
                 "TYPE_FP64": 8}
BUFFER_NUMPY = {"TYPE_BOOL": np.bool_, "TYPE_INT8": np.int8, "TYPE_INT16": np.int16,
                "TYPE_INT32": np.int32, "TYPE_INT64": np.int64, "TYPE_UINT8": np.uint8,
                "TYPE_UINT16": np.uint16, "TYPE_UINT32": np.uint32, "TYPE_UINT64": np.uint64,
                "TYPE_FP16": np.float16, "TYPE_BF16": ml_dtypes.bfloat16,
                "TYPE_FP32": np.float32,
                "TYPE_FP64": np.float64}
# A data file holding 100 (TYPE_BOOL: true) per type, written out byte by byte
# (little-endian; BF16 is float32 100.0's upper half, 0x42c8).
HUNDRED = {"TYPE_BOOL": b"\x01", "TYPE_INT8": b"\x64", "TYPE_INT16": b"\x64\x00",
           "TYPE_INT32": b"\x64\x00\x00\x00", "TYPE_INT64": b"\x64" + b"\x00" * 7,
           "TYPE_UINT8": b"\x64", "TYPE_UINT16": b"\x64\x00", "TYPE_UINT32": b"\x64\x00\x00\x00",
           "TYPE_UINT64": b"\x64" + b"\x00" * 7, "TYPE_FP16": b"\x40\x56",
           "TYPE_BF16": b"\xc8\x42", "TYPE_FP32": b"\x00\x00\xc8\x42",
           "TYPE_FP64": b"\x00" * 6 + b"\x59\x40"}
# Released Triton's scalar state on the onnxruntime backend (entry 3901, measured on 2.51).
NOT_ENOUGH_SPACE = "onnx runtime error 2: not enough space: expected {}, got 0"
SCALAR_OUTPUT = "output 'OUTPUT_STATE' is a scalar which is not supported."


def values_of(array: np.ndarray) -> list:
    """The array as nested lists of Python numbers (bfloat16, which numpy lacks, through float32)."""
    if array.dtype == ml_dtypes.bfloat16:
        array = array.astype(np.float32)
    return array.tolist()


def initial(kind: str, data_type: str, dims: str = "") -> str:
    """An initial_state of `kind` ("zero", "file": initial_state/f, "" none) and `dims`."""
    if not kind:
        return ""
    data = "zero_data: true" if kind == "zero" else 'data_file: "f"'
    return f'initial_state {{ name: "i" data_type: {data_type} dims: [{dims}] {data} }}'


class LayoutModel:
    """A numpy model of the state-coverage contract; records its feeds.

    "sum": the running sum in the state's type (TYPE_BOOL: XOR), INPUT cast
    to it, gated by READY and not START unless `gate` is off; "sum_count"
    (state dims [2]): [sum, count] and OUTPUT = sum + 100 * count; "scalar"
    (dims []): the running sum reshaped to the state's shape.
    """

    def __init__(self, rule: str = "sum", gate: bool = True) -> None:
        """No feed seen yet."""
        self.rule, self.gate = rule, gate
        self.feeds: List[Dict[str, np.ndarray]] = []

    def __call__(self, feed: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """Record the feed and compute the rule."""
        self.feeds.append(feed)
        state = feed["INPUT_STATE"]
        x = feed["INPUT"].astype(state.dtype)
        if self.rule == "scalar":
            out = x + state.reshape(x.shape)
            return {"OUTPUT": out, "OUTPUT_STATE": out.reshape(state.shape)}
        if self.rule == "sum_count":
            total, count = state[..., :1] + x, state[..., 1:] + 1
            return {"OUTPUT": total + 100 * count,
                    "OUTPUT_STATE": np.concatenate([total, count], axis=-1)}
        new = np.logical_xor(x, state) if state.dtype == np.bool_ else x + state
        if self.gate:
            carry = np.logical_and(feed["READY"] != 0, feed["START"] == 0)
            new = np.where(carry, new, x)
        return {"OUTPUT": new, "OUTPUT_STATE": new.copy()}


class LayoutTestCase(SimTestCase):
    """Writes LAYOUT_CONFIG models."""

    def layout_sim(self, *, serving=ONNX, max_batch=4, input_type="TYPE_INT32",
                   state_type=None, state_dims="1", options="", field="int32_false_true",
                   corrid="TYPE_UINT64", strategy="", model=None,
                   **kwargs) -> triton_sim.SequenceBatcherSim:
        """Write the config and wrap `model` (default LayoutModel())."""
        (self.dir / "config.pbtxt").write_text(LAYOUT_CONFIG.format(
            serving=serving, max_batch=max_batch, input_type=input_type,
            state_type=state_type or input_type, state_dims=state_dims, options=options,
            field=field, corrid=corrid, strategy=strategy))
        self.runner = model or LayoutModel()
        return triton_sim.SequenceBatcherSim(self.dir, self.runner, **kwargs)

    def data_file(self, blob: bytes) -> None:
        """initial_state/f holding `blob`."""
        (self.dir / "initial_state").mkdir(exist_ok=True)
        (self.dir / "initial_state" / "f").write_bytes(blob)

    def answers(self, sim, values, corrid: int = 1) -> List:
        """OUTPUT of one sequence (START first), each as a list, or the error's text."""
        out = []
        for index, value in enumerate(values):
            try:
                out.append(sim.infer(corrid, value, start=index == 0).output.tolist())
            except triton_sim.TritonError as err:
                out.append(str(err))
        return out


class StateTypeTest(LayoutTestCase):
    """Every numeric state type: buffers of the type, data files in its bytes, OUTPUT typed alike."""

    def test_element_sizes(self):
        """Each numeric type's buffer holds Triton's bytes per element (BF16: 2)."""
        for name, size in ELEMENT_BYTES.items():
            with self.subTest(type=name):
                dtype = np.dtype(triton_sim.numpy_type(mc.DataType.Value(name)))
                self.assertEqual((dtype, dtype.itemsize), (np.dtype(BUFFER_NUMPY[name]), size))

    def test_file_initial_state_of_every_type(self):
        """The file's bytes are 100 (true) of the type: 1, 2 -> 101, 103 (BOOL: T, F -> F, F)."""
        for name, blob in HUNDRED.items():
            with self.subTest(type=name):
                self.data_file(blob)
                boolean = name == "TYPE_BOOL"
                sim = self.layout_sim(input_type=name, options=initial("file", name, "1"),
                                      model=LayoutModel(gate=False),
                                      field="bool_false_true" if boolean else "int32_false_true")
                self.assertEqual(sim.state_entries[0].shape, (1, 1))
                values = [True, False] if boolean else [1, 2]
                outputs = [sim.infer(1, v, start=i == 0) for i, v in enumerate(values)]
                fed = self.runner.feeds[0]["INPUT_STATE"]
                self.assertEqual((fed.dtype, values_of(fed)),
                                 (np.dtype(BUFFER_NUMPY[name]), [[True if boolean else 100]]))
                self.assertEqual([values_of(r.output) for r in outputs],
                                 [[[False]], [[False]]] if boolean else [[[101]], [[103]]])
                self.assertEqual({r.output.dtype for r in outputs}, {np.dtype(BUFFER_NUMPY[name])})
                self.assertEqual(self.runner.feeds[0]["INPUT"].dtype, np.dtype(BUFFER_NUMPY[name]))

    def test_zero_and_no_initial_state_of_every_type(self):
        """Zeros of the type (BOOL: false), or typed garbage gated away: 1, 2 -> 1, 3."""
        for name in BUFFER_NUMPY:
            for kind in ("zero", ""):
                with self.subTest(type=name, initial=kind or "none"):
                    boolean = name == "TYPE_BOOL"
                    sim = self.layout_sim(input_type=name, options=initial(kind, name, "1"),
                                          model=LayoutModel(gate=not kind),
                                          field="bool_false_true" if boolean else "int32_false_true")
                    values = [True, True] if boolean else [1, 2]
                    outputs = [values_of(sim.infer(1, v, start=i == 0).output)
                               for i, v in enumerate(values)]
                    self.assertEqual(outputs, [[[True]], [[False]]] if boolean else [[[1]], [[3]]])
                    fed = self.runner.feeds[0]["INPUT_STATE"]
                    self.assertEqual(fed.dtype, np.dtype(BUFFER_NUMPY[name]))
                    if kind:
                        self.assertEqual(values_of(fed), [[False]] if boolean else [[0]])

    def test_wider_state(self):
        """INT32 INPUT, INT64 state: the buffers, the hand-back and OUTPUT are INT64."""
        sim = self.layout_sim(input_type="TYPE_INT32", state_type="TYPE_INT64")
        outputs = [sim.infer(1, v, start=v == 1).output for v in (1, 2, 3, 4)]
        self.assertEqual([o.tolist() for o in outputs], [[[1]], [[3]], [[6]], [[10]]])
        self.assertEqual({o.dtype for o in outputs}, {np.dtype(np.int64)})
        self.assertEqual([(f["INPUT"].dtype, f["INPUT_STATE"].dtype) for f in self.runner.feeds],
                         [(np.dtype(np.int32), np.dtype(np.int64))] * 4)
        self.assertEqual([f["INPUT_STATE"].tolist() for f in self.runner.feeds[1:]],
                         [[[1]], [[3]], [[6]]])

    def test_bfloat16_file(self):
        """BF16 2.0 (0x4000) and 0.5 (0x3f00) in a dims [2] file."""
        self.data_file(b"\x00\x40\x00\x3f")
        options = 'initial_state { name: "i" data_type: TYPE_BF16 dims: [2] data_file: "f" }'
        sim = self.layout_sim(input_type="TYPE_BF16", state_dims="2", options=options,
                              model=LayoutModel(gate=False), max_batch=0)
        sim.infer(1, 1.0, start=True)
        fed = self.runner.feeds[0]["INPUT_STATE"]
        self.assertEqual((fed.dtype, fed.astype(np.float32).tolist()),
                         (np.dtype(ml_dtypes.bfloat16), [2.0, 0.5]))


class StateDimsTest(LayoutTestCase):
    """A state of dims [2] beside INPUT [1]: the running sum and the step count."""

    def test_sum_count(self):
        """1, 2, 3, 4 -> 101, 203, 306, 410 released and fixed, batched and not; [sum, count] fed back."""
        for max_batch in (4, 0):
            for fixed in ((), triton_sim.FIXED_TRITON):
                with self.subTest(max_batch=max_batch, fixed=sorted(fixed)):
                    sim = self.layout_sim(state_dims="2", options=initial("zero", "TYPE_INT32", "2"),
                                          model=LayoutModel("sum_count"), max_batch=max_batch,
                                          fixed=fixed)
                    outputs = [int(np.ravel(sim.infer(1, v, start=v == 1).output)[0])
                               for v in (1, 2, 3, 4)]
                    self.assertEqual(outputs, [101, 203, 306, 410])
                    fed = [np.ravel(f["INPUT_STATE"]).tolist() for f in self.runner.feeds]
                    self.assertEqual(fed, [[0, 0], [1, 1], [3, 2], [6, 3]])
                    self.assertEqual(self.runner.feeds[0]["INPUT_STATE"].shape,
                                     (1, 2) if max_batch else (2,))


class ScalarStateTest(LayoutTestCase):
    """Catalogue entry 3901: a state of dims [] gets buffers holding no bytes (measured on 2.51)."""

    def scalar_sim(self, serving=ONNX, max_batch=4, kind="zero", fixed=(), **kwargs):
        """An INT32 model with state dims [] and a zero (or file: 100) initial state."""
        if kind == "file":
            self.data_file(HUNDRED["TYPE_INT32"])
        return self.layout_sim(serving=serving, max_batch=max_batch, state_dims="",
                               options=initial(kind, "TYPE_INT32"), model=LayoutModel("scalar"),
                               fixed=fixed, **kwargs)

    def test_onnxruntime_fails_every_request(self):
        """Every step: 'not enough space: expected 4, got 0', batched or not; the model never runs."""
        for max_batch in (4, 0):
            with self.subTest(max_batch=max_batch):
                sim = self.scalar_sim(max_batch=max_batch)
                self.assertEqual(self.answers(sim, [1, 2, 3, 4]), [NOT_ENOUGH_SPACE.format(4)] * 4)
                self.assertEqual((self.runner.feeds, sim.executions), ([], []))

    def test_onnxruntime_counts_every_row(self):
        """Measured: 3 STARTs -> 12; slots 0 and 2 with slot 1 padded -> 12; slot 1 alone -> 8."""
        sim = self.scalar_sim()
        rounds = [{1: (1, "start"), 2: (2, "start"), 3: (3, "start")}, {1: (4, ""), 3: (5, "")},
                  {2: (6, "")}, {3: (7, "")}]
        got = [{c: str(a) for c, a in sim.step_each(r).items()} for r in rounds]
        self.assertEqual(got, [{c: NOT_ENOUGH_SPACE.format(12) for c in (1, 2, 3)},
                               {c: NOT_ENOUGH_SPACE.format(12) for c in (1, 3)},
                               {2: NOT_ENOUGH_SPACE.format(8)}, {3: NOT_ENOUGH_SPACE.format(12)}])

    def test_fixed_gives_a_whole_buffer(self):
        """Fixed: zeros at START, then the running sum handed back in the state's shape."""
        for max_batch, shape in ((4, (1,)), (0, ())):
            with self.subTest(max_batch=max_batch):
                sim = self.scalar_sim(max_batch=max_batch, fixed=[triton_sim.SCALAR_STATE])
                outputs = [np.ravel(o).tolist() for o in self.answers(sim, [1, 2, 3, 4])]
                self.assertEqual(outputs, [[1], [3], [6], [10]])
                self.assertEqual([(f["INPUT_STATE"].shape, np.ravel(f["INPUT_STATE"]).tolist())
                                  for f in self.runner.feeds],
                                 [(shape, [0]), (shape, [1]), (shape, [3]), (shape, [6])])

    def test_pytorch_reads_uninitialized_memory_once(self):
        """START reads 4 unset bytes (measured: 0 quiet, file or zero); the handed-back state is whole."""
        sim = self.scalar_sim(serving=PYTORCH, kind="file")
        outputs = [int(np.ravel(o)[0]) for o in self.answers(sim, [1, 2, 3, 4])]
        start = int(self.runner.feeds[0]["INPUT_STATE"][0])
        self.assertNotEqual(start, 100)  # the file's value never arrives
        self.assertEqual([np.int32(o - start) for o in outputs], [1, 3, 6, 10])
        self.assertEqual([int(f["INPUT_STATE"][0]) for f in self.runner.feeds[1:]], outputs[:3])

    def test_pytorch_refuses_a_scalar_output(self):
        """Entry pytorch-scalar-output: a state without dims is refused (3901 fixed or not).

        Fixed, the output is taken and handed back without dims.
        """
        for fixed in ((), [triton_sim.SCALAR_STATE]):
            with self.subTest(fixed=fixed):
                sim = self.scalar_sim(serving=PYTORCH, max_batch=0, fixed=fixed)
                self.assertEqual(self.answers(sim, [1, 2]), [SCALAR_OUTPUT] * 2)
                self.assertEqual(len(self.runner.feeds), 2)  # the model ran; its output was refused
        sim = self.scalar_sim(serving=PYTORCH, max_batch=0, fixed=triton_sim.FIXED_TRITON)
        self.assertEqual([np.ravel(o).tolist() for o in self.answers(sim, [1, 2, 3])],
                         [[1], [3], [6]])
        self.assertEqual({f["INPUT_STATE"].shape for f in self.runner.feeds}, {()})

    def test_python_gets_zeros(self):
        """The python backend hands the model zeros, even over a file holding 100 (measured)."""
        for kind in ("zero", "file"):
            for max_batch, shape in ((4, (1,)), (0, ())):
                with self.subTest(initial=kind, max_batch=max_batch):
                    sim = self.scalar_sim(serving=PYTHON, max_batch=max_batch, kind=kind)
                    self.assertFalse(sim.updates_state)
                    outputs = [np.ravel(o).tolist() for o in self.answers(sim, [1, 2, 3])]
                    self.assertEqual(outputs, [[1], [2], [3]])  # this model reads the state each step
                    self.assertEqual({(f["INPUT_STATE"].shape, np.ravel(f["INPUT_STATE"]).tolist()[0])
                                      for f in self.runner.feeds}, {(shape, 0)})

    def test_tensorflow_reads_uninitialized_memory(self):
        """No byte-size error for a state holding no bytes: every step reads unset memory."""
        sim = self.scalar_sim(serving=TENSORFLOW, kind="file")
        answers = self.answers(sim, [1, 2, 3])
        self.assertTrue(all(isinstance(a, list) for a in answers), answers)
        self.assertNotIn(100, [int(f["INPUT_STATE"][0]) for f in self.runner.feeds])


class SameBufferTest(LayoutTestCase):
    """use_same_buffer_for_input_output: no effect on 2.51 (measured on every CPU backend)."""

    def test_contract_answers(self):
        """1, 2, 3 and 11, 12, 13 side by side: 1, 3, 6 and 11, 23, 36, batched in pairs.

        (This model reads the state each step: where the backend hands
        nothing back it sees the zero initial state, and answers INPUT.)
        """
        for serving in (ONNX, PYTORCH, PYTHON, TENSORFLOW):
            for max_batch in (4, 0):
                with self.subTest(serving=serving, max_batch=max_batch):
                    options = "use_same_buffer_for_input_output: true " + initial(
                        "zero", "TYPE_INT32", "1")
                    sim = self.layout_sim(serving=serving, max_batch=max_batch, options=options,
                                          model=LayoutModel(gate=False),
                                          instances=1 if max_batch else 2)
                    self.assertTrue(sim.config.sequence_batching.state[0]
                                    .use_same_buffer_for_input_output)
                    got = {1: [], 2: []}
                    for step in range(3):
                        flags = "start" if step == 0 else ""
                        answers = sim.step({1: (1 + step, flags), 2: (11 + step, flags)})
                        for corrid, response in answers.items():
                            got[corrid].append(int(np.ravel(response.output)[0]))
                    keeps = serving in (PYTHON, TENSORFLOW)  # no hand-back: the model's own state
                    self.assertEqual(got, {1: [1, 2, 3], 2: [11, 12, 13]} if keeps
                                     else {1: [1, 3, 6], 2: [11, 23, 36]})
                    self.assertEqual(sim.executions, [2] * 3 if max_batch else [1] * 6)


class DynaFamiliesTest(LayoutTestCase):
    """The oldest strategy with each family's controls (dyna libtorch: CORRID TYPE_INT64)."""

    OLDEST = "oldest { max_candidate_sequences: 6 preferred_batch_size: [4] }"

    def test_int64_corrid_and_real_requests_only(self):
        """CORRID in its configured INT64; END fed; only real requests, READY 1."""
        sim = self.layout_sim(serving=PYTORCH, strategy=self.OLDEST, corrid="TYPE_INT64")
        sim.step({7: (1, "start"), 2**40 + 9: (5, "start")})
        answers = sim.step({7: (2, "end"), 2**40 + 9: (6, "end")})
        self.assertEqual({c: int(a.output[0, 0]) for c, a in answers.items()},
                         {7: 3, 2**40 + 9: 11})
        feed = self.runner.feeds[-1]
        self.assertEqual((feed["CORRID"].dtype, feed["CORRID"].ravel().tolist()),
                         (np.dtype(np.int64), [7, 2**40 + 9]))
        self.assertEqual((feed["END"].ravel().tolist(), feed["READY"].ravel().tolist()),
                         ([1, 1], [1, 1]))
        self.assertEqual(sim.executions, [2, 2])

    def test_python_and_tensorflow_keep_their_state(self):
        """The oldest strategy changes nothing about who keeps the state."""
        for serving in (PYTHON, TENSORFLOW):
            with self.subTest(serving=serving):
                sim = self.layout_sim(serving=serving, strategy=self.OLDEST)
                self.assertFalse(sim.updates_state)
                self.assertTrue(sim.oldest)


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
