"""CPU-only tests of tests/runners/plan_runner.py: what it skips, what it fails, its buffers.

plan_contract_test loads every plan in `setUpClass`, so what `load` raises is
what Bazel reports. These tests pin it:

- without a GPU (no driver library, cuInit says no device or stub library, or
  no device counted) the test skips, and the reason is exactly "no GPU",
  whether or not `tensorrt` imports;
- with a GPU and no importable `tensorrt` (a hole in the plan environment)
  it is an error, never a skip; so is a driver that fails otherwise;
- with a GPU and TensorRT, the runner needs no other package: with `torch`
  made unimportable, a plan built by `plan_builder` against
  `tests.fake_tensorrt` runs through device buffers of `tests.fake_cuda`
  (copied in, bound by address, copied out, all freed) and, driven by
  `verification.triton_sim`, answers a sequence with the contract's sums.

The fakes prove our call sequence and buffer handling, not TensorRT or CUDA:
real engines run only in plan_contract_test on a GPU machine.
"""

import pathlib
import sys
import tempfile
import unittest
from unittest import mock

import numpy as np

from generators.backends.plan import plan_builder
from generators.model_config import build_config, config_text
from generators.variant import Backend, DType, StatePair, Strategy, Variant
from tests import fake_cuda, fake_tensorrt
from tests.runners import plan_runner
from verification import triton_sim

_NO_GPU_LOADERS = {
    "no driver library": fake_cuda.FakeCuda(missing=True),
    "cuInit: no device": fake_cuda.FakeCuda(init_status=fake_cuda.NO_DEVICE),
    "cuInit: stub library": fake_cuda.FakeCuda(init_status=34),
    "no device counted": fake_cuda.FakeCuda(devices=0),
}


def _load_error(loader, tensorrt) -> BaseException:
    """What plan_runner.load raises with this driver and this `tensorrt` module."""
    with mock.patch.dict(sys.modules, {"tensorrt": tensorrt}):
        try:
            plan_runner.load(pathlib.Path("unused"), driver_loader=loader)
        except Exception as err:  # SkipTest included: the caller inspects whatever it is
            return err
    raise AssertionError("load succeeded without a plan")


class SkipOnlyWithoutGpuTest(unittest.TestCase):
    """The one skip is "no GPU"; a missing package or a broken driver fails."""

    def test_no_gpu_skips_with_exactly_that_reason(self):
        for case, loader in _NO_GPU_LOADERS.items():
            for tensorrt in (None, fake_tensorrt.make()):
                with self.subTest(case=case, tensorrt=tensorrt is not None):
                    err = _load_error(loader, tensorrt)
                    self.assertIsInstance(err, unittest.SkipTest)
                    self.assertEqual(str(err), "no GPU")

    def test_missing_tensorrt_with_a_gpu_is_an_error(self):
        err = _load_error(fake_cuda.FakeCuda(), None)
        self.assertIsInstance(err, plan_runner.MissingDependencyError)
        self.assertNotIsInstance(err, unittest.SkipTest)
        self.assertRegex(str(err), r"a CUDA GPU is here but 'tensorrt' does not import")
        self.assertIn("generators/backends/plan/requirements_gpu.in", str(err))

    def test_broken_driver_is_an_error(self):
        err = _load_error(fake_cuda.FakeCuda(init_status=999), fake_tensorrt.make())
        self.assertIsInstance(err, plan_runner.CudaError)
        self.assertNotIsInstance(err, unittest.SkipTest)
        self.assertEqual(str(err), "CUDA driver call cuInit failed with CUresult 999")

    def _report(self, loader, tensorrt) -> unittest.TestResult:
        """Run a class that loads a plan in setUpClass, as plan_contract_test does."""
        class LoadsAPlan(unittest.TestCase):
            @classmethod
            def setUpClass(cls):
                plan_runner.load(pathlib.Path("unused"), driver_loader=loader)

            def test_nothing(self):
                pass

        result = unittest.TestResult()
        with mock.patch.dict(sys.modules, {"tensorrt": tensorrt}):
            unittest.defaultTestLoader.loadTestsFromTestCase(LoadsAPlan).run(result)
        return result

    def test_unittest_reports_skip_or_error(self):
        result = self._report(fake_cuda.FakeCuda(missing=True), None)
        self.assertEqual([reason for _, reason in result.skipped], ["no GPU"])
        self.assertEqual(result.errors, [])
        result = self._report(fake_cuda.FakeCuda(), None)
        self.assertEqual(result.skipped, [])
        self.assertEqual(len(result.errors), 1)
        self.assertIn("MissingDependencyError", result.errors[0][1])


def _variant(dtype=DType.FLOAT32, shape=(1,), max_batch=8, pairs=1, dyna=False) -> Variant:
    names = [StatePair("INPUT_STATE", "OUTPUT_STATE")] + [
        StatePair(f"INPUT_STATE_{k}", f"OUTPUT_STATE_{k}") for k in range(1, pairs)]
    return Variant(backend=Backend.PLAN, dtype=dtype, shape=shape, max_batch=max_batch,
                   state_pairs=tuple(names),
                   strategy=Strategy.OLDEST if dyna else Strategy.DIRECT)


class BufferPathTest(unittest.TestCase):
    """A fake plan run through fake device buffers, with `torch` unimportable."""

    def setUp(self):
        self.cuda = fake_cuda.FakeCuda()
        self.trt = fake_tensorrt.make("10", device=self.cuda.memory)
        patches = mock.patch.dict(sys.modules, {"tensorrt": self.trt, "torch": None})
        patches.start()
        self.addCleanup(patches.stop)

    def model(self, variant: Variant) -> pathlib.Path:
        """A model folder: config.pbtxt and 1/model.plan, built against the fake."""
        scratch = tempfile.TemporaryDirectory()
        self.addCleanup(scratch.cleanup)
        model_dir = pathlib.Path(scratch.name) / "plan_model"
        (model_dir / "1").mkdir(parents=True)
        (model_dir / "config.pbtxt").write_text(config_text(build_config(variant)))
        with mock.patch.object(plan_builder, "cuda_device_count", return_value=1):
            plan_builder.write_model(variant, None, model_dir / "1")
        return model_dir

    def load(self, model_dir: pathlib.Path):
        """The runner on the fake GPU; a skip here would hide the bug, so it fails."""
        try:
            return plan_runner.load(model_dir, driver_loader=self.cuda)
        except unittest.SkipTest as err:
            self.fail(f"the runner skipped on a machine with a GPU and TensorRT: {err}")

    def run_once(self, variant: Variant, feed) -> dict:
        """One execution; checks every buffer went through device memory and was freed."""
        runner = self.load(self.model(variant))
        outputs = runner(feed)
        (library,) = self.cuda.libraries
        (context,) = runner.engine.contexts
        self.assertEqual(self.cuda.memory.buffers, {}, "every device buffer is freed")
        self.assertEqual(self.cuda.memory.allocations, runner.engine.num_io_tensors)
        self.assertEqual(context.streams, [runner.stream])
        self.assertEqual(library.synchronized, [runner.stream])
        return {name: value.tolist() for name, value in outputs.items()}

    def test_multi_state_values_go_through_device_memory(self):
        variant = _variant(pairs=3)
        feed = {"INPUT": np.array([[2]], np.float32), "START": np.array([[0]], np.float32),
                "READY": np.array([[1]], np.float32),
                "INPUT_STATE": np.array([[10]], np.float32),
                "INPUT_STATE_1": np.array([[20]], np.float32),
                "INPUT_STATE_2": np.array([[30]], np.float32)}
        self.assertEqual(self.run_once(variant, feed), {
            "OUTPUT": [[168.0]],  # 12 + 2 * 24 + 3 * 36
            "OUTPUT_STATE": [[12.0]], "OUTPUT_STATE_1": [[24.0]], "OUTPUT_STATE_2": [[36.0]]})

    def test_int32_dyna_without_batching(self):
        variant = _variant(dtype=DType.INT32, max_batch=0, dyna=True)
        feed = {"INPUT": np.array([5], np.int32), "START": np.array([0], np.int32),
                "READY": np.array([1], np.int32), "INPUT_STATE": np.array([2], np.int32),
                "END": np.array([0], np.int32), "CORRID": np.array([-123456789], np.int32)}
        self.assertEqual(self.run_once(variant, feed), {"OUTPUT": [7], "OUTPUT_STATE": [7]})

    def test_variable_shape_sizes_the_output_buffers(self):
        variant = _variant(shape=(-1,))
        feed = {"INPUT": np.array([[1, 2, 3]], np.float32), "START": np.array([[0]], np.float32),
                "READY": np.array([[1]], np.float32),
                "INPUT_STATE": np.array([[10]], np.float32)}
        self.assertEqual(self.run_once(variant, feed), {"OUTPUT": [[11.0, 12.0, 13.0]],
                                                        "OUTPUT_STATE": [[11.0, 12.0, 13.0]]})

    def test_sequence_through_the_simulated_server(self):
        variant = _variant(dtype=DType.INT32)
        model_dir = self.model(variant)
        sim = triton_sim.SequenceBatcherSim(model_dir, self.load(model_dir))
        outputs = [sim.infer(7, value, start=step == 0, end=step == 3).output.ravel().tolist()
                   for step, value in enumerate((1, 2, 3, 4))]
        self.assertEqual(outputs, [[1], [3], [6], [10]])
        self.assertEqual(self.cuda.memory.buffers, {})

    def test_feed_must_match_engine_inputs(self):
        plan_runner.check_feed(["INPUT", "START"], {"INPUT": 1, "START": 0})
        with self.assertRaisesRegex(KeyError, r"missing \['START'\], unexpected \['END'\]"):
            plan_runner.check_feed(["INPUT", "START"], {"INPUT": 1, "END": 0})


if __name__ == "__main__":
    unittest.main()
