"""Runs a generated ONNX model with ONNX Runtime, as Triton's onnxruntime backend would.

`load(model_dir)` opens `<model_dir>/1/model.onnx` on the CPU provider and
returns a runner for `verification.triton_sim`: it feeds the inputs the graph
declares (a missing one is an error, as in Triton, whose backend requires
every graph input to be a config input, control or state) and returns every
graph output by name. Strings travel as bytes objects, like Triton's BYTES
tensors; ONNX Runtime wants `str`, so they are decoded on the way in and
encoded on the way out.
"""

import pathlib
from typing import Callable, Dict

import numpy as np
import onnxruntime

MODEL_PATH = pathlib.Path("1") / "model.onnx"


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

    def run(feed: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        missing = sorted(set(inputs) - set(feed))
        if missing:
            raise KeyError(f"graph inputs {missing} are not fed; fed {sorted(feed)}")
        results = session.run(outputs, {name: _to_ort(feed[name]) for name in inputs})
        return {name: _from_ort(value) for name, value in zip(outputs, results, strict=True)}

    return run
