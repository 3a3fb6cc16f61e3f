"""CPU-only tests of the TensorRT plan generator (no TensorRT, no GPU needed).

- Every plan variant's config parses back and keeps the contract's plan
  fields (CONTRACT.md section 2).
- Without `tensorrt`, or without a CUDA GPU, `write_model` raises
  BackendUnavailableError naming the way out, and writes nothing.
- Against `tests.fake_tensorrt`, the builder declares exactly the contract's
  engine I/O and optimisation profile, computes the contract's arithmetic
  (evaluated with numpy), and uses DIRECT_IO / set_output_type only where the
  API shape has them (TensorRT 10) and never where it lacks them (11).
- Multi-state variants get one state input and output per pair; pair k
  computes (k + 1) * INPUT + its own state, OUTPUT the sum over the pairs
  (the issue's worked example, as literals).

These fakes test our call logic, not TensorRT: real engines are built and
run only on a GPU machine (tests/runners/plan_runner.py, whose skips and
buffers plan_runner_test covers).
"""

import ctypes
import itertools
import pathlib
import sys
import tempfile
import unittest
from unittest import mock

import numpy as np
from tritonclient.grpc import model_config_pb2 as mc

from generators import matrix
from generators.backends.plan import plan_builder
from generators.errors import BackendUnavailableError, GeneratorError
from generators.model_config import build_config, config_text, parse_config
from generators.variant import Backend, DType, InitialState, StatePair, Strategy, Variant
from tests import fake_tensorrt


def _pair(k):
    """State pair k as the matrix names it: INPUT_STATE[_k] -> OUTPUT_STATE[_k]."""
    suffix = f"_{k}" if k else ""
    return StatePair(f"INPUT_STATE{suffix}", f"OUTPUT_STATE{suffix}")


PAIR_SETS = {count: tuple(_pair(k) for k in range(count)) for count in (2, 3)}
# The order repository's pairs: output names rotated against the inputs.
CROSSED_PAIR_SETS = {
    2: (StatePair("INPUT_STATE_A", "OUTPUT_STATE_B"), StatePair("INPUT_STATE_B", "OUTPUT_STATE_A")),
    3: (StatePair("INPUT_STATE_A", "OUTPUT_STATE_B"), StatePair("INPUT_STATE_B", "OUTPUT_STATE_C"),
        StatePair("INPUT_STATE_C", "OUTPUT_STATE_A")),
}


def multi_state_variants():
    """The multi-state plan variants of the matrix: 2 and 3 pairs, none or file; crossed names."""
    variants = [Variant(backend=Backend.PLAN, dtype=dtype, shape=(1,), max_batch=mb,
                        initial_state=state, state_pairs=pairs)
                for dtype in (DType.FLOAT32, DType.INT32)
                for state in (InitialState.NONE, InitialState.FILE)
                for mb in (8, 0) for pairs in PAIR_SETS.values()]
    return variants + [Variant(backend=Backend.PLAN, dtype=dtype, shape=(1,), max_batch=mb,
                               state_pairs=pairs)
                       for dtype in (DType.FLOAT32, DType.INT32)
                       for mb in (8, 0) for pairs in CROSSED_PAIR_SETS.values()]


def plan_variants():
    """Every plan variant the contract asks for (direct x dtype x shape x state, dyna, multi)."""
    variants = multi_state_variants()
    for dtype, state in itertools.product((DType.FLOAT32, DType.INT32), InitialState):
        for shape, batches in (((1,), (8, 0)), ((-1,), (8,))):
            variants += [Variant(backend=Backend.PLAN, dtype=dtype, shape=shape,
                                 max_batch=mb, initial_state=state) for mb in batches]
    variants += [Variant(backend=Backend.PLAN, dtype=DType.INT32, shape=(1,), max_batch=mb,
                         strategy=Strategy.OLDEST) for mb in (8, 0)]
    # The initial-state dims reproducer (server issue 6538): file state of dims [3].
    variants.append(Variant(backend=Backend.PLAN, dtype=DType.INT32, shape=(-1,), max_batch=8,
                            initial_state=InitialState.FILE, initial_state_dims=(3,)))
    return variants


def _variant(dtype=DType.INT32, shape=(1,), max_batch=8, state=InitialState.NONE, dyna=False):
    return Variant(backend=Backend.PLAN, dtype=dtype, shape=shape, max_batch=max_batch,
                   initial_state=state, strategy=Strategy.OLDEST if dyna else Strategy.DIRECT)


class PlanConfigTest(unittest.TestCase):
    """config.pbtxt of every plan variant (no TensorRT involved)."""

    def test_matrix_plan_entries_are_known_variants(self):
        known = set(plan_variants())
        for entry in matrix.expand():
            if entry.variant.backend is Backend.PLAN:
                self.assertIn(entry.variant, known)

    def test_configs_parse_and_keep_contract_fields(self):
        for variant in plan_variants():
            with self.subTest(variant=variant.to_json()):
                config = parse_config(config_text(build_config(variant)))
                self.assertEqual(config.platform, "tensorrt_plan")
                self.assertEqual(config.max_batch_size, variant.max_batch)
                self.assertEqual(len(config.instance_group), 1)
                self.assertEqual(config.instance_group[0].kind, mc.ModelInstanceGroup.KIND_GPU)
                self.assertNotIn("count:", config_text(config))  # test scripts add one
                self._check_controls(variant, config)
                self._check_state(variant, config)

    def _check_controls(self, variant, config):
        field = "fp32_false_true" if variant.dtype is DType.FLOAT32 else "int32_false_true"
        names = {}
        for control_input in config.sequence_batching.control_input:
            names[control_input.name] = control_input.control[0]
        expected = {"START", "READY"} | ({"END", "CORRID"} if variant.dyna else set())
        self.assertEqual(set(names), expected)
        for name in expected - {"CORRID"}:
            self.assertEqual(list(getattr(names[name], field)), [0, 1], name)
        if variant.dyna:
            self.assertEqual(names["CORRID"].data_type, mc.TYPE_INT32)

    def _check_state(self, variant, config):
        data_type = mc.TYPE_FP32 if variant.dtype is DType.FLOAT32 else mc.TYPE_INT32
        self.assertEqual(config.input[0].data_type, data_type)
        states = config.sequence_batching.state
        self.assertEqual([(s.input_name, s.output_name) for s in states],
                         [(p.input, p.output) for p in variant.state_pairs])
        for state in states:
            self.assertEqual(state.data_type, data_type)
            self.assertEqual(list(state.dims), list(variant.shape))
            initial = list(state.initial_state)
            if variant.initial_state is InitialState.NONE:
                self.assertEqual(initial, [])
                continue
            self.assertEqual(list(initial[0].dims), [3] if variant.initial_state_dims else [1])
            self.assertEqual(initial[0].data_type, data_type)
            if variant.initial_state is InitialState.ZERO:
                self.assertTrue(initial[0].zero_data)
            else:
                self.assertEqual(initial[0].data_file, f"{state.input_name.lower()}_data")


class UnavailableTest(unittest.TestCase):
    """Clean refusal on machines without TensorRT or a GPU."""

    def _write(self):
        scratch = tempfile.TemporaryDirectory()
        self.addCleanup(scratch.cleanup)
        directory = pathlib.Path(scratch.name)
        with self.assertRaises(BackendUnavailableError) as caught:
            plan_builder.write_model(_variant(), None, directory)
        self.assertEqual(list(directory.iterdir()), [], "nothing may be written")
        return str(caught.exception)

    def test_without_tensorrt(self):
        with mock.patch.dict(sys.modules, {"tensorrt": None}):
            message = self._write()
        self.assertRegex(message, r"'tensorrt' cannot be imported")
        self.assertIn("requirements_gpu.in", message)
        self.assertIn("bazel build --config=gpu //models:implicit_repo", message)

    def test_without_gpu(self):
        with mock.patch.dict(sys.modules, {"tensorrt": fake_tensorrt.make("10")}), \
                mock.patch.object(plan_builder, "cuda_device_count", return_value=0):
            message = self._write()
        self.assertRegex(message, r"no CUDA GPU found")

    def test_device_count_without_driver(self):
        def no_driver(name):
            raise OSError(f"{name}: cannot open shared object file")
        self.assertEqual(plan_builder.cuda_device_count(no_driver), 0)

    def test_device_count_from_driver(self):
        class Driver:
            def __init__(self, init_status, count):
                self.init_status, self.count = init_status, count

            def cuInit(self, flags):  # noqa: N802 - the CUDA driver's name
                return self.init_status

            def cuDeviceGetCount(self, pointer):  # noqa: N802 - the CUDA driver's name
                ctypes.cast(pointer, ctypes.POINTER(ctypes.c_int))[0] = self.count
                return 0

        self.assertEqual(plan_builder.cuda_device_count(lambda name: Driver(0, 2)), 2)
        self.assertEqual(plan_builder.cuda_device_count(lambda name: Driver(100, 2)), 0)


class FakeBuildTest(unittest.TestCase):
    """What the builder asks of TensorRT, recorded by a fake `tensorrt`."""

    def build(self, variant, api="10", plan=b"fake plan"):
        """Run write_model against a fake; returns (fake module, directory)."""
        trt = fake_tensorrt.make(api, plan)
        scratch = tempfile.TemporaryDirectory()
        self.addCleanup(scratch.cleanup)
        directory = pathlib.Path(scratch.name)
        with mock.patch.dict(sys.modules, {"tensorrt": trt}), \
                mock.patch.object(plan_builder, "cuda_device_count", return_value=1):
            plan_builder.write_model(variant, None, directory)
        return trt, directory

    def network(self, trt):
        """The one network the builder defined."""
        (builder,) = trt.builders
        (network,) = builder.networks
        return network

    def test_inputs_and_outputs(self):
        for variant in plan_variants():
            with self.subTest(variant=variant.to_json()):
                network = self.network(self.build(variant)[0])
                dtype = variant.dtype.value
                lead = (-1,) if variant.max_batch else ()
                data, control = lead + variant.shape, lead + (1,)
                expected = {"INPUT": (dtype, data), "START": (dtype, control),
                            "READY": (dtype, control)}
                expected.update({p.input: (dtype, data) for p in variant.state_pairs})
                if variant.dyna:
                    expected.update(END=(dtype, control), CORRID=("int32", control))
                declared = {t.name: (t.dtype, t.shape) for t in network.inputs}
                self.assertEqual(declared, expected)
                outputs = {t.name: t.dtype for t in network.outputs}
                names = ["OUTPUT"] + [p.output for p in variant.state_pairs]
                self.assertEqual(outputs, dict.fromkeys(names, dtype))
                for tensor in network.inputs + network.outputs:
                    self.assertEqual(tensor.allowed_formats, 1, tensor.name)  # LINEAR

    def test_writes_the_built_plan(self):
        _, directory = self.build(_variant())
        self.assertEqual((directory / "model.plan").read_bytes(), b"fake plan")

    def test_failed_build_writes_nothing(self):
        with self.assertRaisesRegex(GeneratorError, "failed to build the engine"):
            self.build(_variant(), plan=None)

    def test_profile_fixed_batched(self):
        trt, _ = self.build(_variant(dyna=True))
        (profile,) = trt.builders[0].configs[0].profiles
        for name in ("INPUT", "START", "READY", "INPUT_STATE", "END", "CORRID"):
            self.assertEqual(profile.shapes[name], ((1, 1), (8, 1), (8, 1)), name)

    def test_profile_variable(self):
        trt, _ = self.build(_variant(dtype=DType.FLOAT32, shape=(-1,)))
        (profile,) = trt.builders[0].configs[0].profiles
        for name in ("INPUT", "INPUT_STATE"):
            self.assertEqual(profile.shapes[name], ((1, 1), (8, 8), (8, 32)), name)
        for name in ("START", "READY"):
            self.assertEqual(profile.shapes[name], ((1, 1), (8, 1), (8, 1)), name)

    def test_static_network_has_no_profile(self):
        for dyna in (False, True):
            trt, _ = self.build(_variant(max_batch=0, dyna=dyna))
            self.assertEqual(trt.builders[0].configs[0].profiles, [])

    def test_tensorrt_10_api(self):
        trt, _ = self.build(_variant())
        config = trt.builders[0].configs[0]
        self.assertEqual(config.flags, ["DIRECT_IO", "PREFER_PRECISION_CONSTRAINTS"])
        self.assertEqual(config.pool_limits, {"WORKSPACE": 1 << 20})
        self.assertEqual(trt.builders[0].network_flags, [0])  # explicit batch is implied
        identities = self.network(trt).identities
        self.assertEqual([layer.output_types for layer in identities], [{0: "int32"}] * 2)

    def test_tensorrt_11_api(self):
        for api in ("11", "11-compat"):
            with self.subTest(api=api):
                trt, _ = self.build(_variant(dtype=DType.FLOAT32), api=api)
                config = trt.builders[0].configs[0]
                self.assertEqual(config.flags, [])
                self.assertEqual(config.pool_limits, {"WORKSPACE": 1 << 20})
                self.assertEqual(trt.probes, [], "set_output_type must not even be looked up")
                self.assertFalse(any(layer.output_types for layer in self.network(trt).layers))

    def test_tensorrt_8_api(self):
        trt, directory = self.build(_variant(), api="8")
        self.assertEqual(trt.builders[0].network_flags, [1])  # 1 << EXPLICIT_BATCH
        self.assertEqual(trt.builders[0].configs[0].max_workspace_size, 1 << 20)
        self.assertEqual((directory / "model.plan").read_bytes(), b"fake plan")


def _feed(variant, start, ready, state, value=(5,), corrid=-123456789):
    """One request's inputs, batched when the variant batches.

    `state` goes into every state input, or is a tuple of one list per pair.
    """
    dtype = variant.dtype.value

    def tensor(values):
        array = np.array(values, dtype=dtype)
        return array[None, :] if variant.max_batch else array

    states = state if isinstance(state, tuple) else (state,) * len(variant.state_pairs)
    feed = {"INPUT": tensor(value), "START": tensor([start]), "READY": tensor([ready])}
    feed.update({p.input: tensor(s) for p, s in zip(variant.state_pairs, states, strict=True)})
    if variant.dyna:
        feed.update(END=tensor([0]), CORRID=np.array([[corrid]] if variant.max_batch
                                                     else [corrid], dtype=np.int32))
    return feed


class FakeArithmeticTest(unittest.TestCase):
    """The recorded network, evaluated with numpy, computes the contract."""

    def run_all(self, variant, **kwargs):
        """Every output of one request, flattened to lists."""
        trt = fake_tensorrt.make("11")
        network = fake_tensorrt.FakeNetwork(trt)
        plan_builder.populate_network(trt, network, variant)
        outputs = network.run(_feed(variant, **kwargs))
        return {name: value.ravel().tolist() for name, value in outputs.items()}

    def run_once(self, variant, **kwargs):
        """OUTPUT of one single-state request (after checking OUTPUT == OUTPUT_STATE)."""
        outputs = self.run_all(variant, **kwargs)
        self.assertEqual(outputs["OUTPUT"], outputs["OUTPUT_STATE"])
        return outputs["OUTPUT"]

    def test_every_input_feeds_the_outputs(self):
        for variant in plan_variants():
            with self.subTest(variant=variant.to_json()):
                trt = fake_tensorrt.make("11")
                network = fake_tensorrt.FakeNetwork(trt)
                plan_builder.populate_network(trt, network, variant)
                network.run(_feed(variant, start=0, ready=1, state=[1]))
                self.assertEqual(network.read, {t.name for t in network.inputs})

    def run_sequence(self, variant, initial, values=(1, 2, 3, 4)):
        """Run values from START, handing each state output back as Triton does.

        `initial` is each pair's state at START. Returns (OUTPUT per step,
        each pair's state output per step).
        """
        state, outputs, states = initial, [], [[] for _ in variant.state_pairs]
        for step, value in enumerate(values):
            result = self.run_all(variant, start=int(step == 0), ready=1, state=state,
                                  value=(value,))
            state = tuple(result[p.output] for p in variant.state_pairs)
            outputs.append(result["OUTPUT"][0])
            for pair_states, pair_state in zip(states, state, strict=True):
                pair_states.append(pair_state[0])
        return outputs, states

    def test_worked_sequence(self):
        """Pair k: (k + 1) * (1, 3, 6, 10) + its initial value; OUTPUT the sum."""
        for variant in plan_variants():
            with self.subTest(variant=variant.to_json()):
                count = len(variant.state_pairs)
                file = variant.initial_state is InitialState.FILE
                initial = [100 * (k + 1) if file else 0 for k in range(count)]
                # Without an initial state the START state is garbage, ignored.
                fed = initial if variant.initial_state is not InitialState.NONE else [777] * count
                outputs, states = self.run_sequence(variant, tuple([v] for v in fed))
                want = [[(k + 1) * s + initial[k] for s in (1, 3, 6, 10)] for k in range(count)]
                self.assertEqual(states, want)
                self.assertEqual(outputs, [sum((k + 1) * s for k, s in enumerate(column))
                                           for column in zip(*want, strict=True)])

    def test_multi_state_worked_example(self):
        """The issue's literals, e.g. 5, 15, 30, 50 and 1414, 1442, 1484, 1540."""
        cases = {
            (2, InitialState.NONE): ([5, 15, 30, 50], [[1, 3, 6, 10], [2, 6, 12, 20]]),
            (2, InitialState.FILE): ([505, 515, 530, 550],
                                     [[101, 103, 106, 110], [202, 206, 212, 220]]),
            (3, InitialState.NONE): ([14, 42, 84, 140],
                                     [[1, 3, 6, 10], [2, 6, 12, 20], [3, 9, 18, 30]]),
            (3, InitialState.FILE): ([1414, 1442, 1484, 1540], [[101, 103, 106, 110],
                                     [202, 206, 212, 220], [303, 309, 318, 330]]),
        }
        for variant in multi_state_variants():
            with self.subTest(variant=variant.to_json()):
                count = len(variant.state_pairs)
                file = variant.initial_state is InitialState.FILE
                initial = tuple([100 * (k + 1) if file else -5] for k in range(count))
                got = self.run_sequence(variant, initial)
                self.assertEqual(got, cases[(count, variant.initial_state)])

    def test_multi_state_pairs_read_their_own_state(self):
        """Mid-sequence, pair k adds (k + 1) * INPUT to its own state input only."""
        variant = Variant(backend=Backend.PLAN, dtype=DType.FLOAT32, shape=(1,), max_batch=8,
                          state_pairs=PAIR_SETS[3])
        got = self.run_all(variant, start=0, ready=1, state=([10], [20], [30]), value=(2,))
        self.assertEqual(got, {"OUTPUT": [168.0], "OUTPUT_STATE": [12.0],  # 12 + 2*24 + 3*36
                               "OUTPUT_STATE_1": [24.0], "OUTPUT_STATE_2": [36.0]})
        got = self.run_all(variant, start=1, ready=1, state=([np.nan],) * 3, value=(2,))
        self.assertEqual(got["OUTPUT"], [28.0])  # 2 + 2*4 + 3*6: NaN garbage reaches no pair

    def test_uninitialized_nan_state_at_start(self):
        variant = _variant(dtype=DType.FLOAT32)
        self.assertEqual(self.run_once(variant, start=1, ready=1, state=[np.nan]), [5.0])

    def test_plan_ignores_ready(self):
        variant = _variant(dtype=DType.FLOAT32)
        self.assertEqual(self.run_once(variant, start=0, ready=0, state=[2]), [7.0])

    def test_dyna_gates_on_ready(self):
        for max_batch in (8, 0):
            variant = _variant(max_batch=max_batch, dyna=True)
            self.assertEqual(self.run_once(variant, start=0, ready=0, state=[2]), [5])
            self.assertEqual(self.run_once(variant, start=0, ready=1, state=[2]), [7])

    def test_initial_state_adds_at_start(self):
        variant = _variant(state=InitialState.FILE)
        self.assertEqual(self.run_once(variant, start=1, ready=1, state=[100]), [105])

    def test_variable_state_broadcasts(self):
        variant = _variant(dtype=DType.FLOAT32, shape=(-1,))
        got = self.run_once(variant, start=0, ready=1, state=[10], value=(1, 2, 3))
        self.assertEqual(got, [11.0, 12.0, 13.0])


if __name__ == "__main__":
    unittest.main()
