"""Runs a generated TensorRT plan on the GPU, as Triton's tensorrt backend would.

`load(model_dir)` deserializes `<model_dir>/1/model.plan` with the TensorRT
runtime and returns a runner for `tests.triton_sim`: it takes every engine
input by name (with the leading batch dim when max_batch_size > 0), sets the
input shapes, runs the engine once with `execute_async_v3` and returns every
engine output (OUTPUT and OUTPUT_STATE) as numpy arrays. A missing or an
unexpected input is an error: the engine's inputs must be exactly the
config's inputs, controls and state.

Device buffers are PyTorch CUDA tensors, because the project's GPU machines
have PyTorch. Without `tensorrt`, PyTorch or a CUDA device, `load` raises
`RunnerUnavailableError`, a `unittest.SkipTest`, so a test that loads a plan
on a CPU-only machine is reported as skipped, with the reason.
"""

import pathlib
import unittest
from typing import Callable, Dict, List

import numpy as np

MODEL_PATH = pathlib.Path("1") / "model.plan"
Runner = Callable[[Dict[str, np.ndarray]], Dict[str, np.ndarray]]


class RunnerUnavailableError(unittest.SkipTest):
    """This machine cannot run plans (no TensorRT, PyTorch or CUDA GPU)."""

    def __init__(self, message: str) -> None:
        super().__init__(f"cannot run TensorRT plans here: {message}")


def _import_gpu_stack():
    """Return (tensorrt, torch), or raise RunnerUnavailableError saying what is missing."""
    try:
        import tensorrt  # noqa: PLC0415 - GPU machines only
    except ImportError as err:
        raise RunnerUnavailableError(f"'tensorrt' does not import ({err})") from None
    try:
        import torch  # noqa: PLC0415 - GPU machines only
    except ImportError as err:
        raise RunnerUnavailableError(
            f"'torch' (used for CUDA buffers) does not import ({err})"
        ) from None
    if not torch.cuda.is_available():
        raise RunnerUnavailableError("torch sees no CUDA device")
    return tensorrt, torch


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

    def __init__(self, trt, torch, plan: pathlib.Path) -> None:
        self.trt, self.torch = trt, torch
        self.runtime, self.engine = _deserialize(trt, plan)
        self.context = self.engine.create_execution_context()
        self.names = _io_names(trt, self.engine)
        self.stream = torch.cuda.Stream()

    def _numpy_dtype(self, name: str) -> np.dtype:
        return np.dtype(self.trt.nptype(self.engine.get_tensor_dtype(name)))

    def _torch_dtype(self, name: str):
        return self.torch.from_numpy(np.zeros(0, dtype=self._numpy_dtype(name))).dtype

    def _bind_input(self, name: str, value: np.ndarray):
        array = np.ascontiguousarray(value, dtype=self._numpy_dtype(name))
        tensor = self.torch.from_numpy(array).cuda()
        if not self.context.set_input_shape(name, array.shape):
            raise ValueError(f"input {name} shape {array.shape} is outside the engine's profile")
        self.context.set_tensor_address(name, tensor.data_ptr())
        return tensor

    def _bind_output(self, name: str):
        shape = tuple(self.context.get_tensor_shape(name))
        if any(d < 0 for d in shape):
            raise ValueError(f"output {name} shape {shape} is unresolved; are all inputs set?")
        tensor = self.torch.empty(shape, dtype=self._torch_dtype(name), device="cuda")
        self.context.set_tensor_address(name, tensor.data_ptr())
        return tensor

    def __call__(self, feed: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """Run the engine once on a complete feed; returns every output by name."""
        check_feed(self.names["inputs"], feed)
        with self.torch.cuda.stream(self.stream):
            keep = [self._bind_input(name, feed[name]) for name in self.names["inputs"]]
            outputs = {name: self._bind_output(name) for name in self.names["outputs"]}
            if not self.context.execute_async_v3(self.stream.cuda_stream):
                raise RuntimeError("TensorRT execute_async_v3 failed (see the log above)")
        self.stream.synchronize()
        del keep  # input buffers had to outlive the execution
        return {name: tensor.cpu().numpy() for name, tensor in outputs.items()}


def load(model_dir: pathlib.Path) -> Runner:
    """A runner for the plan in model_dir.

    Raises:
        RunnerUnavailableError: no TensorRT, PyTorch or CUDA device here (a skip).
        RuntimeError: the plan does not deserialize.
    """
    trt, torch = _import_gpu_stack()
    return _PlanRunner(trt, torch, pathlib.Path(model_dir) / MODEL_PATH)
