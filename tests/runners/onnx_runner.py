"""Runs a generated ONNX model with ONNX Runtime, as Triton's onnxruntime backend would.

`load(model_dir)` opens `<model_dir>/1/model.onnx` on the CPU provider and
returns a runner for `verification.triton_sim`: it feeds the inputs the graph
declares (a missing one is an error, as in Triton, whose backend requires
every graph input to be a config input, control or state) and returns every
graph output by name. Strings travel as bytes objects, like Triton's BYTES
tensors; ONNX Runtime wants `str`, so they are decoded on the way in and
encoded on the way out. numpy has no bfloat16: a bfloat16 tensor travels as
float32, as tritonclient hands it over (its top 16 bits are the bfloat16),
and ONNX Runtime gets and gives the raw 16-bit values (`OrtValue`).
"""

import ctypes
import pathlib
from typing import Callable, Dict

import numpy as np
import onnxruntime
from onnx import TensorProto

MODEL_PATH = pathlib.Path("1") / "model.onnx"
BFLOAT16 = "tensor(bfloat16)"


def _to_ort(array: np.ndarray) -> np.ndarray:
    """Bytes elements as `str`, which is what ONNX Runtime takes for strings."""
    if array.dtype != np.object_:
        return array
    return np.vectorize(lambda b: b.decode() if isinstance(b, bytes) else b, otypes=[object])(
        array)


def _from_ort(array: np.ndarray) -> np.ndarray:
    """String outputs back to bytes elements, as Triton returns BYTES."""
    if array.dtype != np.object_:
        return array
    return np.vectorize(lambda s: s.encode() if isinstance(s, str) else s, otypes=[object])(
        array)


def _to_bfloat16(array: np.ndarray) -> onnxruntime.OrtValue:
    """A float32-valued array as an ONNX Runtime bfloat16 tensor (float32's top 16 bits)."""
    bits = np.ascontiguousarray(array, dtype=np.float32).view(np.uint32) >> 16
    return onnxruntime.OrtValue.ortvalue_from_numpy_with_onnx_type(
        np.ascontiguousarray(bits.astype(np.uint16)), TensorProto.BFLOAT16)


def _from_bfloat16(value: onnxruntime.OrtValue) -> np.ndarray:
    """An ONNX Runtime bfloat16 tensor as float32 (exact: bfloat16 is float32's top half)."""
    raw = ctypes.string_at(value.data_ptr(), value.tensor_size_in_bytes())
    bits = np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16
    return bits.view(np.float32).reshape(value.shape())


def load(model_dir: pathlib.Path) -> Callable[[Dict[str, np.ndarray]], Dict[str, np.ndarray]]:
    """A runner for the ONNX model in model_dir (one CPU thread, quiet logs)."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(
        str(pathlib.Path(model_dir) / MODEL_PATH), options, providers=["CPUExecutionProvider"]
    )
    inputs = [tensor.name for tensor in session.get_inputs()]
    outputs = [tensor.name for tensor in session.get_outputs()]
    bfloat16 = {tensor.name for tensor in session.get_inputs() + session.get_outputs()
                if tensor.type == BFLOAT16}

    def run_bfloat16(feed: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """Run through OrtValues, which carry bfloat16 (numpy arrays cannot)."""
        values = {name: _to_bfloat16(feed[name]) if name in bfloat16
                  else onnxruntime.OrtValue.ortvalue_from_numpy(_to_ort(feed[name]))
                  for name in inputs}
        results = session.run_with_ort_values(outputs, values)
        return {name: _from_bfloat16(value) if name in bfloat16 else _from_ort(value.numpy())
                for name, value in zip(outputs, results, strict=True)}

    def run(feed: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        missing = sorted(set(inputs) - set(feed))
        if missing:
            raise KeyError(f"graph inputs {missing} are not fed; fed {sorted(feed)}")
        if bfloat16:
            return run_bfloat16(feed)
        results = session.run(outputs, {name: _to_ort(feed[name]) for name in inputs})
        return {name: _from_ort(value) for name, value in zip(outputs, results, strict=True)}

    return run
