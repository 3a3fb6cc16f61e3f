"""Unit tests of the python backend's two model sources and generators/backends/python/python_builder.py.

The models run in-process through tests.runners.python_runner (a stand-in for
the python backend's utils module), one request at a time, so each test can
pin one rule the e2e test can only see from outside. model.py: state keyed
by CORRID and dropped on END, padding requests leaving state alone, idle
eviction, string parsing, OUTPUT_STATE only when requested, config errors,
and with several state pairs: pair k weighing k + 1, seeded from its own
injected state, kept apart from the other pairs and sequences.
state_coverage_model.py, against the contract's literals: every state type
(1, 2, 3, 4 -> 1, 3, 6, 10; file 101, 103, 106, 110; boolean parity), BF16
through DLPack only, a wider state, the [sum, count] and scalar states,
interleaved batched sequences with a padding row and width 3 on variable
shapes. The builder: which source each variant serves.
"""

import itertools
import json
import pathlib
import tempfile
import unittest
from unittest import mock

import numpy as np

from generators.backends.python import python_builder
from generators.build_options import BuildOptions
from generators.dtypes import dtype_info
from generators.errors import BackendUnavailableError
from generators.variant import STATE_COVERAGE_DTYPES, DType, Variant
from generators.writer import write_model_dir
from tests.runners import python_runner


def _model_dir(root, **spec):
    full = {"backend": "python", "dtype": "int32", "shape": [1], "max_batch": 8}
    full.update(spec)
    model_dir = pathlib.Path(root) / "model"
    write_model_dir(Variant.from_spec(full), BuildOptions(), model_dir)
    return model_dir


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self):
        """Start at 0 seconds."""
        self.now = 0.0

    def __call__(self):
        """The current fake time."""
        return self.now


class ModelTestCase(unittest.TestCase):
    """Builds one python model in a temp dir and sends it single requests."""

    SPEC = {}

    def setUp(self):
        """Generate the model and load it with the in-process runner."""
        self._tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self._tmp.cleanup)
        self.runner = python_runner.load(_model_dir(self._tmp.name, **self.SPEC))
        self.batched = self.runner.batched

    def feed(self, value, corrid, start=0, end=0, ready=1, state=0, width=1):
        """Every input of one request, as Triton's sequence batcher builds it.

        `state` is what Triton injects into every state input, or a tuple of
        one value per state pair.
        """
        lead = (1,) if self.batched else ()
        is_string = self.runner.model.spec.is_string
        data_type = object if is_string else self.runner.model.spec.dtype

        def data(v, w):
            return np.full(lead + (w,), str(v).encode() if is_string else v, dtype=data_type)

        true_value = self.runner.model.spec.flags["start"][1]
        control = {bool: np.bool_, float: np.float32, int: np.int32}[type(true_value)]
        flags = {"START": start, "END": end, "READY": ready}
        feed = {name: np.full(lead + (1,), value, dtype=control) for name, value in flags.items()}
        pairs = self.runner.model.spec.state_pairs
        states = state if isinstance(state, tuple) else (state,) * len(pairs)
        feed.update({pair.input: data(v, 1) for pair, v in zip(pairs, states, strict=True)})
        feed.update(INPUT=data(value, width), CORRID=np.full(lead + (1,), corrid, dtype=np.uint64))
        return feed

    def infer(self, value, corrid, **flags):
        """OUTPUT of one request, element 0 (decoded text for strings)."""
        output = self.runner(self.feed(value, corrid, **flags))["OUTPUT"].reshape(-1)[0]
        return output.decode() if isinstance(output, bytes) else output


class Int32ModelTest(ModelTestCase):
    """Batched int32 model without initial state."""

    def test_running_sum_per_correlation_id(self):
        """Interleaved sequences keep separate sums."""
        self.assertEqual(self.infer(1, 7, start=1), 1)
        self.assertEqual(self.infer(10, 8, start=1), 10)
        self.assertEqual(self.infer(2, 7), 3)
        self.assertEqual(self.infer(20, 8), 30)
        self.assertEqual(self.infer(3, 7, end=1), 6)

    def test_injected_state_is_ignored_without_initial_state(self):
        """Without an initial_state, Triton's INPUT_STATE is garbage: START seeds 0."""
        self.assertEqual(self.infer(5, 7, start=1, state=12345), 5)
        self.assertEqual(self.infer(1, 7, state=999), 6)

    def test_end_drops_state(self):
        """END frees the sequence; a later non-START request is refused."""
        self.infer(1, 7, start=1)
        self.infer(2, 7, end=1)
        self.assertEqual(len(self.runner.model.states), 0)
        with self.assertRaisesRegex(python_runner.PythonModelError, "resend it with the START"):
            self.infer(3, 7)

    def test_padding_request_leaves_state_alone(self):
        """READY=0 (CORRID 0) requests neither read nor write any state."""
        self.infer(1, 7, start=1)
        self.infer(1000, 0, ready=0)
        self.infer(1000, 7, ready=0)
        self.assertEqual(len(self.runner.model.states), 1)
        self.assertEqual(self.infer(2, 7, end=1), 3)

    def test_start_mid_sequence_resets(self):
        """A second START restarts the sum: 1, 2, then 42 (start), 9 gives 51."""
        for value in (1, 2):
            self.infer(value, 7, start=int(value == 1))
        self.assertEqual(self.infer(42, 7, start=1), 42)
        self.assertEqual(self.infer(9, 7, end=1), 51)

    def test_idle_sequences_are_evicted(self):
        """A sequence idle for twice max_sequence_idle_microseconds is dropped."""
        model = self.runner.model
        clock = FakeClock()
        model.states = type(model.states)(2 * model.spec.idle_seconds, clock=clock)
        self.assertEqual(model.spec.idle_seconds, 5.0)
        self.infer(1, 7, start=1)
        clock.now = 9.9
        self.infer(1, 8, start=1)
        self.assertEqual(len(model.states), 2)
        clock.now = 10.5
        self.infer(1, 9, start=1)
        self.assertEqual(len(model.states), 2)  # 7 evicted, 9 added
        with self.assertRaises(python_runner.PythonModelError):
            self.infer(2, 7)
        self.assertEqual(self.infer(2, 8), 3)

    def test_output_state_only_when_requested(self):
        """OUTPUT_STATE is returned only to a request that asks for it."""
        request = python_runner.InferenceRequest(
            [python_runner.Tensor(n, a) for n, a in self.feed(4, 7, start=1).items()],
            ["OUTPUT"])
        (response,) = self.runner.execute([request])
        self.assertEqual([t.name() for t in response.output_tensors()], ["OUTPUT"])
        outputs = self.runner(self.feed(1, 7))
        np.testing.assert_array_equal(outputs["OUTPUT"], [[5]])
        np.testing.assert_array_equal(outputs["OUTPUT_STATE"], [[5]])

    def test_errors_stay_per_request(self):
        """One bad request in a batch fails alone; the others are answered."""
        good = self.runner.requests(self.feed(1, 7, start=1))[0]
        bad = self.runner.requests(self.feed(1, 8))[0]
        responses = self.runner.model.execute([good, bad])
        self.assertFalse(responses[0].has_error())
        self.assertIn("sequence 8 has no running state", responses[1].error().message())

    def test_unexpected_failure_stays_per_request(self):
        """Even an unforeseen exception becomes that request's error only."""
        feed = self.feed(1, 7, start=1)
        feed["INPUT"] = np.array([["not a number"]], dtype=object)
        bad = self.runner.requests(feed)[0]
        good = self.runner.requests(self.feed(1, 8, start=1))[0]
        responses = self.runner.model.execute([bad, good])
        self.assertIn("ValueError", responses[0].error().message())
        self.assertFalse(responses[1].has_error())


class VariableFileStateTest(ModelTestCase):
    """Variable-shape int32 model whose file initial state holds 100."""

    SPEC = {"shape": [-1], "initial_state": "file"}

    def test_width_one_state_broadcasts(self):
        """START seeds from INPUT_STATE (width 1) and broadcasts over width 3."""
        outputs = self.runner(self.feed(1, 7, start=1, state=100, width=3))
        np.testing.assert_array_equal(outputs["OUTPUT"], [[101, 101, 101]])
        outputs = self.runner(self.feed(2, 7, state=100, width=3))
        np.testing.assert_array_equal(outputs["OUTPUT"], [[103, 103, 103]])

    def test_width_mismatch_is_a_request_error(self):
        """A width-2 step on a width-3 sequence cannot broadcast."""
        self.runner(self.feed(1, 7, start=1, state=100, width=3))
        with self.assertRaisesRegex(python_runner.PythonModelError, "does not broadcast"):
            self.runner(self.feed(1, 7, state=100, width=2))


class StringModelTest(ModelTestCase):
    """Non-batched string model with a zero initial state."""

    SPEC = {"dtype": "object", "max_batch": 0, "initial_state": "zero"}

    def test_decimal_text_of_the_running_sum(self):
        """Strings accumulate numerically; the empty initial state counts as 0."""
        self.assertEqual(self.infer(1, 7, start=1, state=""), "1")
        self.assertEqual(self.infer(-12, 7, state=""), "-11")
        self.assertEqual(self.infer(100, 7, end=1, state=""), "89")

    def test_not_a_number(self):
        """A non-decimal element fails that request and keeps the sum."""
        self.infer(5, 7, start=1, state="")
        with self.assertRaisesRegex(python_runner.PythonModelError, "not a decimal integer"):
            self.infer("five", 7, state="")
        self.assertEqual(self.infer(1, 7, state=""), "6")


class BoolModelTest(ModelTestCase):
    """Bool models carry int32 data with BOOL controls."""

    SPEC = {"dtype": "bool"}

    def test_bool_controls(self):
        """True/False controls drive an int32 sum."""
        self.assertEqual(self.runner.model.spec.flags["start"], ("START", True))
        self.assertEqual(self.infer(3, 7, start=1), 3)
        self.assertEqual(self.infer(4, 7, end=1), 7)


class SpecTest(unittest.TestCase):
    """The model reads everything from the config Triton passes."""

    def setUp(self):
        """Load the int32 model's config as Triton's JSON."""
        self._tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self._tmp.cleanup)
        model_dir = _model_dir(self._tmp.name, dtype="float32", max_batch=0)
        self.module = python_runner.load_module(model_dir / python_runner.MODEL_PATH)
        self.config = json.loads(python_runner.config_json(model_dir))

    def test_fields(self):
        """Names, dtype, batching and idle time come from the config."""
        spec = self.module.Spec(self.config)
        self.assertEqual((spec.input_name, spec.output_name), ("INPUT", "OUTPUT"))
        self.assertEqual(spec.state_pairs, [("INPUT_STATE", "OUTPUT_STATE", 1, False)])
        self.assertEqual(spec.corrid, "CORRID")
        self.assertEqual(spec.flags["ready"], ("READY", 1.0))
        self.assertIs(spec.dtype, np.float32)
        self.assertFalse(spec.batched)
        self.assertEqual(spec.idle_seconds, 5.0)

    def test_missing_corrid_is_a_load_error(self):
        """Without CORRID the model cannot key state: it refuses to load."""
        batching = self.config["sequence_batching"]
        batching["control_input"] = [c for c in batching["control_input"]
                                     if c["name"] != "CORRID"]
        with self.assertRaisesRegex(ValueError, "no CONTROL_SEQUENCE_CORRID"):
            self.module.Spec(self.config)


    def test_state_entries_are_required_and_distinct(self):
        """No state, or two state entries sharing a name, is a load error."""
        batching = self.config["sequence_batching"]
        state = batching["state"][0]
        batching["state"] = [state, dict(state, input_name="INPUT_STATE_1")]
        with self.assertRaisesRegex(ValueError, r"state tensor names .* repeat"):
            self.module.Spec(self.config)
        batching["state"] = []
        with self.assertRaisesRegex(ValueError, "declares no state"):
            self.module.Spec(self.config)


THREE_PAIRS = [["INPUT_STATE", "OUTPUT_STATE"], ["INPUT_STATE_1", "OUTPUT_STATE_1"],
               ["INPUT_STATE_2", "OUTPUT_STATE_2"]]
STATE_OUTPUTS = ("OUTPUT_STATE", "OUTPUT_STATE_1", "OUTPUT_STATE_2")


class MultiStateFileModelTest(ModelTestCase):
    """Batched int32 model with three state pairs whose files hold 100, 200, 300."""

    SPEC = {"initial_state": "file", "state_pairs": THREE_PAIRS}

    def step(self, value, corrid, **flags):
        """(OUTPUT, each pair's state output) of one request, as ints."""
        outputs = self.runner(self.feed(value, corrid, state=(100, 200, 300), **flags))
        return [int(outputs[n].reshape(-1)[0]) for n in ("OUTPUT",) + STATE_OUTPUTS]

    def test_spec_reads_every_pair(self):
        """Pair k: its names from the config, weight k + 1, its own initial state."""
        self.assertEqual(self.runner.model.spec.state_pairs, [
            ("INPUT_STATE", "OUTPUT_STATE", 1, True), ("INPUT_STATE_1", "OUTPUT_STATE_1", 2, True),
            ("INPUT_STATE_2", "OUTPUT_STATE_2", 3, True)])

    def test_worked_example(self):
        """INPUT 1..4 (Triton injects 100/200/300 every time): OUTPUT 1414, 1442, 1484, 1540."""
        got = [self.step(v, 7, start=int(v == 1), end=int(v == 4)) for v in (1, 2, 3, 4)]
        self.assertEqual(got, [[1414, 101, 202, 303], [1442, 103, 206, 309],
                               [1484, 106, 212, 318], [1540, 110, 220, 330]])
        self.assertEqual(len(self.runner.model.states), 0)

    def test_pairs_and_sequences_stay_apart(self):
        """Interleaved sequences keep three states each; a restart resets only its own."""
        self.assertEqual(self.step(1, 7, start=1), [1414, 101, 202, 303])
        self.assertEqual(self.step(10, 8, start=1), [1540, 110, 220, 330])
        self.assertEqual(self.step(1000, 0, ready=0)[0], 1000)  # padding: no state touched
        self.assertEqual(self.step(2, 7), [1442, 103, 206, 309])
        self.assertEqual(self.step(5, 8, start=1), [1470, 105, 210, 315])
        self.assertEqual(self.step(3, 7), [1484, 106, 212, 318])
        self.assertEqual(self.step(6, 8), [1554, 111, 222, 333])

    def test_only_requested_pair_outputs(self):
        """A client asking for OUTPUT and OUTPUT_STATE_2 gets exactly those."""
        request = python_runner.InferenceRequest(
            [python_runner.Tensor(n, a) for n, a in
             self.feed(4, 7, start=1, state=(100, 200, 300)).items()],
            ["OUTPUT", "OUTPUT_STATE_2"])
        (response,) = self.runner.execute([request])
        tensors = {t.name(): t.as_numpy().tolist() for t in response.output_tensors()}
        self.assertEqual(tensors, {"OUTPUT": [[1456]], "OUTPUT_STATE_2": [[312]]})  # 104+2*208+3*312


class MultiStateNoInitialModelTest(ModelTestCase):
    """Non-batched float32 model with two state pairs and no initial state."""

    SPEC = {"dtype": "float32", "max_batch": 0, "state_pairs": THREE_PAIRS[:2]}

    def test_injected_garbage_is_ignored(self):
        """START seeds every pair with 0: OUTPUT 5, 15, 30, 50 whatever Triton injects."""
        outputs = [self.runner(self.feed(v, 7, start=int(v == 1), state=(1e6, -7.0)))
                   for v in (1, 2, 3, 4)]
        self.assertEqual([o["OUTPUT"].tolist() for o in outputs], [[5.0], [15.0], [30.0], [50.0]])
        self.assertEqual([o["OUTPUT_STATE_1"].tolist() for o in outputs],
                         [[2.0], [6.0], [12.0], [20.0]])
        self.assertEqual(outputs[0]["OUTPUT"].dtype, np.float32)


NUMERIC_COVERAGE = sorted(d.value for d in STATE_COVERAGE_DTYPES if d is not DType.BOOLEAN)


class CoverageModel:
    """One state-coverage python model, driven a batch of rows at a time."""

    def __init__(self, model_dir, **spec):
        """Build the variant's model in the new folder `model_dir` and load it in-process."""
        full = {"backend": "python", "dtype": "int32", "shape": [1], "max_batch": 8}
        full.update(spec)
        self.variant = Variant.from_spec(full)
        write_model_dir(self.variant, BuildOptions(), model_dir)
        self.runner = python_runner.load(model_dir)

    def _array(self, dtype, value, shape):
        numpy_type = np.float32 if dtype is DType.BFLOAT16 else dtype_info(dtype).io_numpy
        return np.full(shape, value, dtype=numpy_type)

    def step(self, rows, state=0, width=1):
        """Outputs of one execution; rows are (corrid, value, flags), flags a subset of "SER".

        "S" START, "E" END, "R" READY (a row without it is padding). `state` is
        what Triton injects into INPUT_STATE of every row; `value` may be a
        list (one element per column of a variable-shape INPUT).
        """
        batched = self.runner.batched
        if not batched and len(rows) != 1:
            raise ValueError("a model without batching takes one row")
        control = dtype_info(self.variant.dtype).control_numpy

        def lead(shape):
            return (len(rows),) + shape if batched else shape

        feed = {name: np.array([[flag in flags] for _, _, flags in rows], dtype=control)
                .reshape(lead((1,))) for name, flag in (("START", "S"), ("END", "E"), ("READY", "R"))}
        feed["CORRID"] = np.array([corrid for corrid, _, _ in rows], dtype=np.uint64).reshape(lead((1,)))
        feed["INPUT"] = np.stack([self._array(self.variant.dtype, value, (width,))
                                  for _, value, _ in rows]).reshape(lead((width,)))
        state_dims = tuple(1 if d == -1 else d for d in self.variant.state_layout)
        feed["INPUT_STATE"] = self._array(self.variant.state_type, state, lead(state_dims))
        return self.runner(feed)

    def sequence(self, values, corrid=7, state=0):
        """OUTPUT element 0 of each step of one sequence (START first, END last), as Python values."""
        outputs = []
        for index, value in enumerate(values):
            flags = "R" + "S" * (index == 0) + "E" * (index == len(values) - 1)
            outputs.append(self.step([(corrid, value, flags)], state=state)["OUTPUT"].reshape(-1)[0].item())
        return outputs


class CoverageTestCase(unittest.TestCase):
    """Builds state-coverage python models in a temp dir."""

    def setUp(self):
        """A temp dir for the models, one numbered folder each."""
        self._tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self._tmp.cleanup)
        self._models = itertools.count()

    def model(self, **spec):
        """The loaded CoverageModel of a spec (python, int32, [1], max_batch 8 unless given)."""
        return CoverageModel(pathlib.Path(self._tmp.name) / str(next(self._models)), **spec)


class StateTypeTest(CoverageTestCase):
    """Every numeric state type: INPUT + state in the state's dtype, the contract's literals."""

    def test_worked_sequence_every_type(self):
        """1, 2, 3, 4 -> 1, 3, 6, 10 (no and zero initial state) and 101, 103, 106, 110 (file)."""
        for dtype in NUMERIC_COVERAGE:
            for max_batch, initial, injected, want in ((8, "none", 77, [1, 3, 6, 10]),
                                                       (0, "none", 77, [1, 3, 6, 10]),
                                                       (8, "zero", 0, [1, 3, 6, 10]),
                                                       (8, "file", 100, [101, 103, 106, 110])):
                with self.subTest(dtype=dtype, max_batch=max_batch, initial_state=initial):
                    model = self.model(dtype=dtype, max_batch=max_batch, initial_state=initial)
                    self.assertEqual(model.sequence([1, 2, 3, 4], state=injected), want)

    def test_output_types(self):
        """OUTPUT and OUTPUT_STATE come back in the state's type (BF16 as ml_dtypes' bfloat16)."""
        for dtype in NUMERIC_COVERAGE:
            with self.subTest(dtype=dtype):
                outputs = self.model(dtype=dtype).step([(7, 3, "SR")])
                numpy_type = dtype_info(DType(dtype)).io_numpy
                self.assertEqual(outputs["OUTPUT"].dtype, np.dtype(numpy_type))
                self.assertEqual(outputs["OUTPUT_STATE"].dtype, np.dtype(numpy_type))
                self.assertEqual(outputs["OUTPUT"].shape, (1, 1))

    def test_interleaved_sequences_and_padding(self):
        """Three sequences in one batch keep apart; a padding row touches no state."""
        for dtype in ("int8", "uint64", "float16", "bfloat16"):
            with self.subTest(dtype=dtype):
                model = self.model(dtype=dtype, initial_state="file")
                first = model.step([(7, 1, "SR"), (8, 4, "SR"), (9, 2, "SR")], state=100)
                self.assertEqual(first["OUTPUT"].astype(np.float64).tolist(), [[101], [104], [102]])
                second = model.step([(7, 2, "R"), (0, 99, ""), (9, 2, "R")], state=100)
                self.assertEqual(second["OUTPUT"].astype(np.float64)[[0, 2]].tolist(), [[103], [104]])
                third = model.step([(9, 2, "R"), (8, 3, "ER"), (7, 3, "R")], state=100)
                self.assertEqual(third["OUTPUT"].astype(np.float64).tolist(), [[106], [107], [106]])

    def test_variable_width_three(self):
        """A width-3 request [1, 2, 3] then [4, 5, 6] gives [1, 2, 3] then [5, 7, 9]."""
        for dtype in ("int16", "uint32", "float64", "bfloat16"):
            with self.subTest(dtype=dtype):
                model = self.model(dtype=dtype, shape=[-1])
                first = model.step([(7, [1, 2, 3], "SR")], width=3)
                second = model.step([(7, [4, 5, 6], "ER")], width=3)
                self.assertEqual(first["OUTPUT"].astype(np.float64).tolist(), [[1, 2, 3]])
                self.assertEqual(second["OUTPUT"].astype(np.float64).tolist(), [[5, 7, 9]])

    def test_start_mid_sequence_resets(self):
        """A second START restarts the sum from the injected initial state."""
        model = self.model(dtype="uint8", initial_state="file")
        self.assertEqual(model.sequence([1, 2], state=100), [101, 103])
        self.assertEqual(model.sequence([5, 1], state=100), [105, 106])

    def test_integer_sums_wrap_in_the_state_type(self):
        """The sum is computed in the state's type: int8 100 + 100 wraps to -56."""
        model = self.model(dtype="int8", max_batch=0, initial_state="file")
        self.assertEqual(model.sequence([100], state=100), [-56])


class BFloat16Test(CoverageTestCase):
    """BF16 crosses the python backend through DLPack only; the state keeps bfloat16 precision."""

    def test_as_numpy_is_refused_as_the_backend_does(self):
        """The stand-in refuses as_numpy() on BF16 with the backend's own message."""
        tensor = python_runner.Tensor("INPUT", np.array([16256], dtype=np.uint16), bf16=True)
        with self.assertRaisesRegex(python_runner.TritonModelException, "Use to_dlpack"):
            tensor.as_numpy()

    def test_output_is_a_bf16_tensor(self):
        """OUTPUT is built from a DLPack capsule whose type code says bfloat16."""
        model = self.model(dtype="bfloat16", max_batch=0)
        feed = model.runner.requests({
            "START": np.array([1], np.int32), "END": np.array([0], np.int32),
            "READY": np.array([1], np.int32), "CORRID": np.array([7], np.uint64),
            "INPUT": np.array([3.0], np.float32), "INPUT_STATE": np.array([0.0], np.float32)})
        (response,) = model.runner.execute(feed)
        output = response.output_tensors()[0]
        self.assertTrue(output.is_bf16())
        self.assertEqual(output.raw().tolist(), [0x4040])  # 3.0 in bfloat16

    def test_state_is_rounded_to_bfloat16(self):
        """200 + 57 = 257 is 256 in bfloat16 (nearest even), and the kept state is 256."""
        model = self.model(dtype="bfloat16", max_batch=0)
        self.assertEqual(model.sequence([200, 57, 1]), [200.0, 256.0, 256.0])

    def test_rounding_helpers(self):
        """float32 -> bfloat16 rounds to nearest even and keeps NaN a NaN."""
        module = python_runner.load_module(python_builder.STATE_COVERAGE_SOURCE)
        bits = module.float32_to_bf16(np.array([1.0, 257.0, 259.0, np.nan, -2.5], np.float32))
        self.assertEqual(bits[[0, 1, 2, 4]].tolist(), [0x3F80, 0x4380, 0x4382, 0xC020])
        self.assertTrue(np.isnan(module.bf16_to_float32(bits)[3]))


class BooleanStateTest(CoverageTestCase):
    """A TYPE_BOOL state: OUTPUT = OUTPUT_STATE = S xor INPUT, the running parity."""

    def test_running_parity(self):
        """true, false, true, true -> true, true, false, true; file (true): false, false, true, false."""
        for max_batch, initial, injected, want in ((8, "none", True, [True, True, False, True]),
                                                   (0, "none", True, [True, True, False, True]),
                                                   (8, "zero", False, [True, True, False, True]),
                                                   (8, "file", True, [False, False, True, False])):
            with self.subTest(max_batch=max_batch, initial_state=initial):
                model = self.model(dtype="boolean", max_batch=max_batch, initial_state=initial)
                self.assertEqual(model.sequence([True, False, True, True], state=injected), want)

    def test_bool_controls_and_width_three(self):
        """Controls are bool; a width-3 [T, F, T] then [T, T, F] gives [T, F, T] then [F, T, T]."""
        model = self.model(dtype="boolean", shape=[-1])
        self.assertEqual(model.runner.model.spec.flags["start"], ("START", True))
        first = model.step([(7, [True, False, True], "SR")], width=3)
        second = model.step([(7, [True, True, False], "R")], width=3)
        self.assertEqual(first["OUTPUT"].tolist(), [[True, False, True]])
        self.assertEqual(second["OUTPUT"].tolist(), [[False, True, True]])
        self.assertEqual(second["OUTPUT_STATE"].dtype, np.bool_)


class WiderStateTest(CoverageTestCase):
    """INPUT int32 with an int64 state, float16 with a float32 state: OUTPUT has the state's type."""

    def test_sum_in_the_wider_type(self):
        """1, 2, 3, 4 -> 1, 3, 6, 10, answered in int64 / float32."""
        for dtype, state_dtype in (("int32", "int64"), ("float16", "float32")):
            for max_batch in (0, 8):
                with self.subTest(dtype=dtype, max_batch=max_batch):
                    model = self.model(dtype=dtype, state_dtype=state_dtype, max_batch=max_batch)
                    self.assertEqual(model.sequence([1, 2, 3, 4]), [1, 3, 6, 10])
                    outputs = model.step([(8, 1, "SR")])
                    self.assertEqual(outputs["OUTPUT"].dtype, np.dtype(state_dtype))
                    self.assertEqual(outputs["OUTPUT_STATE"].dtype, np.dtype(state_dtype))

    def test_state_outgrows_the_input_type(self):
        """An int64 state holds sums beyond int32: 2**31 - 1 twice is 2**32 - 2."""
        model = self.model(dtype="int32", state_dtype="int64", max_batch=0)
        self.assertEqual(model.sequence([2**31 - 1, 2**31 - 1]), [2**31 - 1, 2**32 - 2])


class StateShapeTest(CoverageTestCase):
    """States shaped unlike INPUT: [2] holds [sum, count]; [] is a scalar running sum."""

    def test_sum_count(self):
        """1, 2, 3, 4 -> 101, 203, 306, 410; OUTPUT_STATE is the new [sum, count]."""
        for max_batch in (0, 8):
            with self.subTest(max_batch=max_batch):
                model = self.model(state_dims=[2], initial_state="zero", max_batch=max_batch)
                self.assertEqual(model.sequence([1, 2, 3, 4]), [101, 203, 306, 410])
                outputs = model.step([(8, 5, "SR")])
                self.assertEqual(outputs["OUTPUT_STATE"].reshape(-1).tolist(), [5, 1])
                self.assertEqual(outputs["OUTPUT"].shape, (1, 1) if max_batch else (1,))

    def test_sum_count_interleaved(self):
        """Two sequences in one batch count their own steps."""
        model = self.model(state_dims=[2], initial_state="zero")
        model.step([(7, 1, "SR"), (8, 10, "SR")])
        outputs = model.step([(7, 2, "R"), (0, 5, ""), (8, 10, "R")])
        self.assertEqual(outputs["OUTPUT"][[0, 2]].tolist(), [[203], [220]])
        self.assertEqual(outputs["OUTPUT_STATE"][[0, 2]].tolist(), [[3, 2], [20, 2]])

    def test_scalar(self):
        """1, 2, 3, 4 -> 1, 3, 6, 10; the state output has the state's shape ([] per batch entry)."""
        for max_batch, shape in ((0, ()), (8, (1,))):
            with self.subTest(max_batch=max_batch):
                model = self.model(state_dims=[], initial_state="zero", max_batch=max_batch)
                self.assertEqual(model.sequence([1, 2, 3, 4]), [1, 3, 6, 10])
                outputs = model.step([(8, 5, "SR")])
                self.assertEqual(outputs["OUTPUT_STATE"].shape, shape)
                self.assertEqual(outputs["OUTPUT"].shape, (1, 1) if max_batch else (1,))

    def test_misshapen_injected_state_is_a_request_error(self):
        """A [sum, count] state injected with one element at START fails that request, naming it."""
        model = self.model(state_dims=[2], initial_state="zero", max_batch=0)
        feed = {"START": np.array([1], np.int32), "END": np.array([0], np.int32),
                "READY": np.array([1], np.int32), "CORRID": np.array([7], np.uint64),
                "INPUT": np.array([1], np.int32), "INPUT_STATE": np.array([0], np.int32)}
        with self.assertRaisesRegex(python_runner.PythonModelError,
                                    r"INPUT_STATE holds shape \[1\] at START, not the configured \[2\]"):
            model.runner(feed)


class CoverageSpecTest(CoverageTestCase):
    """The rule and the types come from the config."""

    def test_rules(self):
        """Each state layout and type selects its rule."""
        for spec, rule in (({"dtype": "uint16"}, "sum"), ({"dtype": "boolean"}, "xor"),
                           ({"state_dims": [2], "initial_state": "zero"}, "sum_count"),
                           ({"state_dims": [], "initial_state": "zero"}, "scalar"),
                           ({"dtype": "int32", "state_dtype": "int64"}, "sum")):
            with self.subTest(spec=spec):
                self.assertEqual(self.model(**spec).runner.model.spec.rule, rule)

    def test_undefined_layout_is_a_load_error(self):
        """A state of dims [3] under INPUT [1] defines no rule: the model refuses to load."""
        model = self.model(dtype="int8")
        config = json.loads(json.dumps(model.runner.config))
        config["sequence_batching"]["state"][0]["dims"] = ["3"]
        with self.assertRaisesRegex(ValueError, r"state dims \[3\] with INPUT dims \[1\]"):
            model.runner.module.Spec(config)
        config["sequence_batching"]["state"][0]["data_type"] = "TYPE_STRING"
        with self.assertRaisesRegex(ValueError, "unsupported data_type 'TYPE_STRING'"):
            model.runner.module.Spec(config)


class BuilderTest(unittest.TestCase):
    """python_builder copies one of the two model sources byte for byte."""

    def written(self, **spec):
        """The model.py bytes the builder writes for a spec."""
        full = {"backend": "python", "dtype": "int32", "shape": [1], "max_batch": 8}
        full.update(spec)
        with tempfile.TemporaryDirectory() as tmp:
            python_builder.write_model(Variant.from_spec(full), BuildOptions(), pathlib.Path(tmp))
            return (pathlib.Path(tmp) / "model.py").read_bytes()

    def test_upstream_variants_serve_model_py(self):
        """Upstream's dtypes, several states, dyna and the single buffer keep model.py."""
        source = python_builder.MODEL_SOURCE.read_bytes()
        for spec in ({"dtype": "object", "shape": [-1]}, {"dtype": "bool"},
                     {"dtype": "float32", "initial_state": "file"}, {"strategy": "oldest"},
                     {"same_buffer": True},
                     {"state_pairs": [["INPUT_STATE", "OUTPUT_STATE"], ["A", "B"]]}):
            with self.subTest(spec=spec):
                self.assertEqual(self.written(**spec), source)

    def test_state_coverage_variants_serve_their_model(self):
        """A state of another type, dtype or dims serves state_coverage_model.py."""
        source = python_builder.STATE_COVERAGE_SOURCE.read_bytes()
        for spec in ({"dtype": "bfloat16"}, {"dtype": "boolean", "shape": [-1]},
                     {"state_dtype": "int64"}, {"state_dims": [], "initial_state": "zero"},
                     {"state_dims": [2]}):
            with self.subTest(spec=spec):
                self.assertEqual(self.written(**spec), source)

    def test_missing_source_names_the_fix(self):
        """A build without the model source fails with a clear error."""
        variant = Variant.from_spec({"backend": "python", "dtype": "int8", "shape": [1],
                                     "max_batch": 0})
        with tempfile.TemporaryDirectory() as tmp, mock.patch.object(
                python_builder, "STATE_COVERAGE_SOURCE", pathlib.Path(tmp) / "absent.py"):
            with self.assertRaisesRegex(BackendUnavailableError, "absent.py as data"):
                python_builder.write_model(variant, BuildOptions(), pathlib.Path(tmp))


if __name__ == "__main__":
    unittest.main()
