"""Unit tests of generators/backends/python/model.py and generators/backends/python/python_builder.py.

The model runs in-process through tests.runners.python_runner (a stand-in for
the python backend's utils module), one request at a time, so each test can
pin one rule the e2e test can only see from outside: state keyed by CORRID
and dropped on END, padding requests leaving state alone, idle eviction,
string parsing, OUTPUT_STATE only when requested, config errors, and with
several state pairs: pair k weighing k + 1, seeded from its own injected
state, kept apart from the other pairs and sequences.
"""

import json
import pathlib
import tempfile
import unittest
from unittest import mock

import numpy as np

from generators.backends.python import python_builder
from generators.build_options import BuildOptions
from generators.errors import BackendUnavailableError
from generators.variant import Variant
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


class BuilderTest(unittest.TestCase):
    """python_builder copies the one model source byte for byte."""

    def test_copies_the_source(self):
        """Every variant's model.py equals generators/backends/python/model.py."""
        with tempfile.TemporaryDirectory() as tmp:
            variant = Variant.from_spec(
                {"backend": "python", "dtype": "object", "shape": [-1], "max_batch": 8})
            python_builder.write_model(variant, BuildOptions(), pathlib.Path(tmp))
            self.assertEqual((pathlib.Path(tmp) / "model.py").read_bytes(),
                             python_builder.MODEL_SOURCE.read_bytes())

    def test_missing_source_names_the_fix(self):
        """A build without the model source fails with a clear error."""
        with tempfile.TemporaryDirectory() as tmp, mock.patch.object(
                python_builder, "MODEL_SOURCE", pathlib.Path(tmp) / "absent.py"):
            with self.assertRaisesRegex(BackendUnavailableError, "model.py"):
                python_builder.write_model(None, BuildOptions(), pathlib.Path(tmp))


if __name__ == "__main__":
    unittest.main()
