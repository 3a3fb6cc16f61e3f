"""Runs a generated TensorRT plan on the GPU, as Triton's tensorrt backend would.

`load(model_dir)` deserializes `<model_dir>/1/model.plan` with the TensorRT
runtime and returns a runner for `verification.triton_sim`: it takes every engine
input by name (with the leading batch dim when max_batch_size > 0), sets the
input shapes, runs the engine once with `execute_async_v3` and returns every
engine output (OUTPUT and OUTPUT_STATE) as numpy arrays. A missing or an
unexpected input is an error: the engine's inputs must be exactly the
config's inputs, controls and state.

Device buffers, the context and the stream come from the CUDA driver API
(`libcuda.so.1`, through ctypes): the library every NVIDIA driver installs
and TensorRT itself runs on. So the runner needs no Python package beyond
`tensorrt`, which the plan environment holds under `--config=gpu`
(generators/backends/plan/requirements_gpu.in). It must not borrow another
framework's CUDA tensors: the plan environment cannot hold one, and a runner
that needed one could never run.

What `load` raises, and so what a test that loads a plan in `setUpClass`
reports:
- no usable GPU (no driver library, or the driver reports no device):
  `NoGpuError`, a `unittest.SkipTest` whose reason is exactly "no GPU". It is
  the only skip.
- a GPU, but `tensorrt` does not import: `MissingDependencyError`, an error.
  The environment lacks what its requirement set promises; that must fail.
- any other driver failure: `CudaError`, an error naming the call.
"""

import ctypes
import importlib
import pathlib
import unittest
from typing import Callable, Dict, List

import numpy as np

MODEL_PATH = pathlib.Path("1") / "model.plan"
DRIVER_LIBRARY = "libcuda.so.1"
NO_GPU = "no GPU"
Runner = Callable[[Dict[str, np.ndarray]], Dict[str, np.ndarray]]

# cuInit results that mean "no usable GPU on this machine" (CUDA_ERROR_STUB_LIBRARY,
# CUDA_ERROR_NO_DEVICE). Every other failure is a broken driver, which must not
# pass as a skip.
NO_GPU_STATUSES = frozenset({34, 100})


class NoGpuError(unittest.SkipTest):
    """No CUDA GPU here: the one reason a plan test may skip."""

    def __init__(self) -> None:
        super().__init__(NO_GPU)


class MissingDependencyError(RuntimeError):
    """A GPU is here, but a package the plan environment must hold does not import."""

    def __init__(self, package: str, err: ImportError) -> None:
        super().__init__(
            f"a CUDA GPU is here but '{package}' does not import ({err}); the plan"
            " environment must hold generators/backends/plan/requirements_gpu.in, which"
            " `bazel test --config=gpu` installs"
        )


class CudaError(RuntimeError):
    """A CUDA driver call failed."""

    def __init__(self, call: str, status: int) -> None:
        super().__init__(f"CUDA driver call {call} failed with CUresult {status}")
        self.call, self.status = call, status


def _check(status: int, call: str) -> None:
    if status != 0:
        raise CudaError(call, status)


class CudaDriver:
    """Device 0's primary context (the one TensorRT uses), device buffers, streams.

    Every argument is passed as an explicit ctypes value: without declared
    argtypes, ctypes would pass a Python int as a 32-bit C int and cut a
    64-bit device address.
    """

    def __init__(self, library) -> None:
        self._lib = library
        self._context = ctypes.c_void_p()

    @classmethod
    def open(cls, loader=ctypes.CDLL) -> "CudaDriver":
        """The driver with device 0's primary context current; NoGpuError without a GPU."""
        try:
            library = loader(DRIVER_LIBRARY)
        except OSError:
            raise NoGpuError() from None
        status = library.cuInit(0)
        if status in NO_GPU_STATUSES:
            raise NoGpuError()
        _check(status, "cuInit")
        count = ctypes.c_int(0)
        _check(library.cuDeviceGetCount(ctypes.byref(count)), "cuDeviceGetCount")
        if count.value < 1:
            raise NoGpuError()
        driver = cls(library)
        device = ctypes.c_int(0)
        _check(library.cuDeviceGet(ctypes.byref(device), ctypes.c_int(0)), "cuDeviceGet")
        _check(library.cuDevicePrimaryCtxRetain(ctypes.byref(driver._context), device),
               "cuDevicePrimaryCtxRetain")
        driver.make_current()
        return driver

    def make_current(self) -> None:
        """Make the context current on the calling thread (contexts are per thread)."""
        _check(self._lib.cuCtxSetCurrent(self._context), "cuCtxSetCurrent")

    def alloc(self, nbytes: int) -> int:
        """Address of a new device buffer of at least nbytes (never 0 bytes)."""
        address = ctypes.c_uint64(0)
        _check(self._lib.cuMemAlloc_v2(ctypes.byref(address), ctypes.c_size_t(max(nbytes, 1))),
               "cuMemAlloc_v2")
        return address.value

    def free(self, address: int) -> None:
        """Release a buffer from `alloc`."""
        _check(self._lib.cuMemFree_v2(ctypes.c_uint64(address)), "cuMemFree_v2")

    def to_device(self, address: int, array: np.ndarray) -> None:
        """Copy a C-contiguous host array into a device buffer."""
        _check(self._lib.cuMemcpyHtoD_v2(ctypes.c_uint64(address),
                                         array.ctypes.data_as(ctypes.c_void_p),
                                         ctypes.c_size_t(array.nbytes)), "cuMemcpyHtoD_v2")

    def to_host(self, array: np.ndarray, address: int) -> None:
        """Copy a device buffer into a C-contiguous host array."""
        _check(self._lib.cuMemcpyDtoH_v2(array.ctypes.data_as(ctypes.c_void_p),
                                         ctypes.c_uint64(address),
                                         ctypes.c_size_t(array.nbytes)), "cuMemcpyDtoH_v2")

    def new_stream(self) -> int:
        """Handle of a new blocking stream (TensorRT warns on the default stream)."""
        stream = ctypes.c_void_p()
        _check(self._lib.cuStreamCreate(ctypes.byref(stream), ctypes.c_uint(0)), "cuStreamCreate")
        return stream.value or 0

    def synchronize(self, stream: int) -> None:
        """Wait until everything queued on the stream has run."""
        _check(self._lib.cuStreamSynchronize(ctypes.c_void_p(stream)), "cuStreamSynchronize")


def _import_tensorrt():
    try:
        return importlib.import_module("tensorrt")
    except ImportError as err:
        raise MissingDependencyError("tensorrt", err) from err


def _deserialize(trt, plan: pathlib.Path):
    logger = trt.Logger(trt.Logger.WARNING)
    runtime = trt.Runtime(logger)
    engine = runtime.deserialize_cuda_engine(plan.read_bytes())
    if engine is None:
        raise RuntimeError(
            f"TensorRT could not deserialize {plan}; was it built by another TensorRT"
            " version or for another GPU? (the log above says which)"
        )
    return runtime, engine


def _io_names(trt, engine) -> Dict[str, List[str]]:
    names = {"inputs": [], "outputs": []}
    for index in range(engine.num_io_tensors):
        name = engine.get_tensor_name(index)
        is_input = engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
        names["inputs" if is_input else "outputs"].append(name)
    return names


def check_feed(inputs: List[str], feed: Dict[str, np.ndarray]) -> None:
    """Raise KeyError unless the feed names exactly the engine's inputs."""
    missing = sorted(set(inputs) - set(feed))
    unexpected = sorted(set(feed) - set(inputs))
    if missing or unexpected:
        raise KeyError(
            f"engine inputs {sorted(inputs)} do not match the feed {sorted(feed)}:"
            f" missing {missing}, unexpected {unexpected}"
        )


class _PlanRunner:
    """One engine, one execution context and one CUDA stream."""

    def __init__(self, trt, driver: CudaDriver, plan: pathlib.Path) -> None:
        self.trt, self.driver = trt, driver
        self.runtime, self.engine = _deserialize(trt, plan)
        self.context = self.engine.create_execution_context()
        self.names = _io_names(trt, self.engine)
        self.stream = driver.new_stream()

    def _numpy_dtype(self, name: str) -> np.dtype:
        return np.dtype(self.trt.nptype(self.engine.get_tensor_dtype(name)))

    def _output_shape(self, name: str) -> tuple:
        shape = tuple(self.context.get_tensor_shape(name))
        if any(d < 0 for d in shape):
            raise ValueError(f"output {name} shape {shape} is unresolved; are all inputs set?")
        return shape

    def _set_inputs(self, feed: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        arrays = {}
        for name in self.names["inputs"]:
            arrays[name] = np.ascontiguousarray(feed[name], dtype=self._numpy_dtype(name))
            if not self.context.set_input_shape(name, arrays[name].shape):
                raise ValueError(f"input {name} shape {arrays[name].shape} is outside the"
                                 " engine's profile")
        return arrays

    def _bind(self, buffers: Dict[str, int], name: str, nbytes: int) -> int:
        buffers[name] = self.driver.alloc(nbytes)
        self.context.set_tensor_address(name, buffers[name])
        return buffers[name]

    def __call__(self, feed: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """Run the engine once on a complete feed; returns every output by name."""
        check_feed(self.names["inputs"], feed)
        self.driver.make_current()
        inputs = self._set_inputs(feed)
        # Output shapes resolve only once every input shape is set.
        outputs = {name: np.empty(self._output_shape(name), dtype=self._numpy_dtype(name))
                   for name in self.names["outputs"]}
        buffers: Dict[str, int] = {}
        try:
            for name, array in inputs.items():
                self.driver.to_device(self._bind(buffers, name, array.nbytes), array)
            for name, array in outputs.items():
                self._bind(buffers, name, array.nbytes)
            if not self.context.execute_async_v3(self.stream):
                raise RuntimeError("TensorRT execute_async_v3 failed (see the log above)")
            self.driver.synchronize(self.stream)
            for name, array in outputs.items():
                self.driver.to_host(array, buffers[name])
        finally:
            for address in buffers.values():
                self.driver.free(address)
        return outputs


def load(model_dir: pathlib.Path, driver_loader=ctypes.CDLL) -> Runner:
    """A runner for the plan in model_dir.

    The GPU is looked for first: on a machine without one nothing else
    matters, and the plan environment there need not hold TensorRT.

    Args:
        model_dir: The model's folder (holding `1/model.plan`).
        driver_loader: Opens the CUDA driver library by name (tests pass a fake).

    Raises:
        NoGpuError: no CUDA GPU here (a skip, reason "no GPU").
        MissingDependencyError: a GPU but no importable `tensorrt` (an error).
        CudaError: a CUDA driver call failed.
        RuntimeError: the plan does not deserialize.
    """
    driver = CudaDriver.open(driver_loader)
    trt = _import_tensorrt()
    return _PlanRunner(trt, driver, pathlib.Path(model_dir) / MODEL_PATH)
