"""Runs a generated python-backend model in-process, as Triton's python backend would.

`load(model_dir)` imports `<model_dir>/1/model.py` against a minimal stand-in
for `triton_python_backend_utils` (the module the backend's stub provides),
initializes `TritonPythonModel` with the model config as Triton passes it
(JSON, proto field names, int64 as strings, default fields printed), and
returns a runner for `verification.triton_sim`. The runner splits a batched feed
into one request per row, as the python backend hands the model one request
per batch slot, and stacks the responses back into [B, ...] arrays.
Every state output (OUTPUT_STATE, OUTPUT_STATE_1, ...) is requested along
with OUTPUT so the simulation can read it; on a real server the model only
sees OUTPUT requested.

TYPE_BF16 tensors behave as in the python backend of Triton 2.51 (r24.10
`pb_tensor.cc`): `as_numpy()` refuses them and DLPack is the only way in and
out. The stand-in's `to_dlpack()` returns a real DLPack capsule (numpy's,
its type code set to bfloat16) and `Tensor.from_dlpack` reads one, so a
model's DLPack handling runs for real. At the runner's edge BF16 data is
`ml_dtypes.bfloat16`, the type the pinned tritonclient sends and returns it
as (generators/dtypes.py, verification/triton_sim_state.py): a feed's values
are converted to it on the way in (float32 rounded to nearest even) and a
BF16 output comes back as it.
"""

import ctypes
import importlib.util
import itertools
import json
import pathlib
import sys
import types
from collections.abc import Iterable

import ml_dtypes
import numpy as np
from google.protobuf import json_format

from generators.model_config import parse_config

MODEL_PATH = pathlib.Path("1") / "model.py"
UTILS_MODULE = "triton_python_backend_utils"
_module_ids = itertools.count()


class PythonModelError(Exception):
    """A request the model answered with an error (its TritonError message)."""

    def __init__(self, message: str) -> None:
        """Keep the model's own message."""
        super().__init__(message)


BF16 = "TYPE_BF16"
# The python backend's refusal (r24.10 pb_tensor.cc `PbTensor::AsNumpy`).
BF16_AS_NUMPY_ERROR = ("Tensor dtype is BF16 and cannot be converted to NumPy. Use to_dlpack()"
                       " and from_dlpack() instead.")
# dlpack.h DLDataTypeCode values and the numpy type of each (code, bits).
_DL_BFLOAT = 4
_DL_NUMPY = {(0, 8): np.int8, (0, 16): np.int16, (0, 32): np.int32, (0, 64): np.int64,
             (1, 8): np.uint8, (1, 16): np.uint16, (1, 32): np.uint32, (1, 64): np.uint64,
             (2, 16): np.float16, (2, 32): np.float32, (2, 64): np.float64, (6, 8): np.bool_,
             (_DL_BFLOAT, 16): np.uint16}


class _DLTensor(ctypes.Structure):
    """dlpack.h's DLTensor, the first member of the DLManagedTensor a capsule holds."""

    _fields_ = [("data", ctypes.c_void_p), ("device_type", ctypes.c_int32),
                ("device_id", ctypes.c_int32), ("ndim", ctypes.c_int32),
                ("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16),
                ("shape", ctypes.POINTER(ctypes.c_int64)),
                ("strides", ctypes.POINTER(ctypes.c_int64)), ("byte_offset", ctypes.c_uint64)]


_capsule_pointer = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.py_object, ctypes.c_char_p)(
    ("PyCapsule_GetPointer", ctypes.pythonapi))


def _dl_tensor(capsule) -> _DLTensor:
    """The DLTensor inside a "dltensor" capsule."""
    return _DLTensor.from_address(_capsule_pointer(capsule, b"dltensor"))


class TritonModelException(Exception):  # noqa: N818 - the name pb_utils gives it
    """Stand-in for `pb_utils.TritonModelException` (what the backend's refusals raise)."""


class Tensor:
    """Stand-in for `pb_utils.Tensor`: a named numpy array (BF16: its bit patterns)."""

    def __init__(self, name: str, array: np.ndarray, bf16: bool = False) -> None:
        """Wrap an array under a tensor name; `bf16` marks uint16 bfloat16 bit patterns."""
        self._name, self._array, self._bf16 = name, np.asarray(array), bf16

    def name(self) -> str:
        """The tensor name."""
        return self._name

    def is_bf16(self) -> bool:
        """Whether the tensor is TYPE_BF16 (a stand-in helper, not in pb_utils)."""
        return self._bf16

    def raw(self) -> np.ndarray:
        """The stored array, bit patterns for BF16 (a stand-in helper, not in pb_utils)."""
        return self._array

    def as_numpy(self) -> np.ndarray:
        """The tensor data (refused for BF16, as the python backend does)."""
        if self._bf16:
            raise TritonModelException(BF16_AS_NUMPY_ERROR)
        return self._array

    def to_dlpack(self):
        """A DLPack capsule sharing the data (bfloat16's type code for BF16)."""
        capsule = np.asarray(self._array, order="C").__dlpack__()
        if self._bf16:
            _dl_tensor(capsule).code = _DL_BFLOAT
        return capsule

    @staticmethod
    def from_dlpack(name: str, capsule) -> "Tensor":
        """A tensor holding a copy of a CPU DLPack capsule's contiguous data."""
        head = _dl_tensor(capsule)
        if (head.code, head.bits) not in _DL_NUMPY or head.lanes != 1:
            raise TritonModelException(f"DLPack type code {head.code} bits {head.bits} unsupported")
        dtype = np.dtype(_DL_NUMPY[(head.code, head.bits)])
        shape = tuple(head.shape[i] for i in range(head.ndim))
        size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        data = ctypes.string_at(head.data + head.byte_offset, size)
        return Tensor(name, np.frombuffer(data, dtype=dtype).reshape(shape).copy(),
                      bf16=head.code == _DL_BFLOAT)


def to_bf16_bits(values: np.ndarray) -> np.ndarray:
    """bfloat16 bit patterns (uint16) of numeric values, rounded to nearest even."""
    return np.asarray(values).astype(ml_dtypes.bfloat16).view(np.uint16)


def from_bf16_bits(bits: np.ndarray) -> np.ndarray:
    """The ml_dtypes bfloat16 array of bfloat16 bit patterns."""
    return np.asarray(bits, dtype=np.uint16).view(ml_dtypes.bfloat16)


class TritonError(Exception):
    """Stand-in for `pb_utils.TritonError`."""

    def __init__(self, message: str) -> None:
        """Keep the message, readable through `message()`."""
        super().__init__(message)
        self._message = message

    def message(self) -> str:
        """The error text."""
        return self._message


class InferenceRequest:
    """Stand-in for `pb_utils.InferenceRequest`: inputs and requested outputs."""

    def __init__(self, inputs: Iterable[Tensor], requested: Iterable[str]) -> None:
        """Hold the input tensors and the names of the requested outputs."""
        self._inputs = {tensor.name(): tensor for tensor in inputs}
        self._requested = list(requested)

    def inputs(self):
        """The input tensors."""
        return list(self._inputs.values())

    def requested_output_names(self):
        """Names of the outputs the client asked for."""
        return list(self._requested)


class InferenceResponse:
    """Stand-in for `pb_utils.InferenceResponse`."""

    def __init__(self, output_tensors=(), error=None) -> None:
        """Hold the output tensors or an error."""
        self._outputs, self._error = list(output_tensors), error

    def output_tensors(self):
        """The output tensors."""
        return self._outputs

    def has_error(self) -> bool:
        """Whether the response carries an error."""
        return self._error is not None

    def error(self):
        """The TritonError, or None."""
        return self._error


def get_input_tensor_by_name(request: InferenceRequest, name: str):
    """The named input tensor of a request, or None."""
    return next((t for t in request.inputs() if t.name() == name), None)


def fake_utils() -> types.ModuleType:
    """A module with the part of `triton_python_backend_utils` models use."""
    module = types.ModuleType(UTILS_MODULE)
    for item in (Tensor, TritonError, TritonModelException, InferenceRequest, InferenceResponse,
                 get_input_tensor_by_name):
        setattr(module, item.__name__, item)
    return module


def load_module(path: pathlib.Path) -> types.ModuleType:
    """Import a python-backend model.py with the stand-in utils module."""
    spec = importlib.util.spec_from_file_location(f"python_model_{next(_module_ids)}", path)
    module = importlib.util.module_from_spec(spec)
    previous = sys.modules.get(UTILS_MODULE)
    sys.modules[UTILS_MODULE] = fake_utils()
    try:
        spec.loader.exec_module(module)
    finally:
        if previous is None:
            del sys.modules[UTILS_MODULE]
        else:
            sys.modules[UTILS_MODULE] = previous
    return module


def config_json(model_dir: pathlib.Path) -> str:
    """config.pbtxt as Triton hands it to the python model (JSON)."""
    config = parse_config((pathlib.Path(model_dir) / "config.pbtxt").read_text())
    return json_format.MessageToJson(
        config, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)


class PythonModelRunner:
    """Calls a TritonPythonModel the way Triton's python backend does."""

    def __init__(self, model_dir: pathlib.Path) -> None:
        """Import and initialize the model of model_dir."""
        model_dir = pathlib.Path(model_dir)
        self.config = json.loads(config_json(model_dir))
        self.batched = int(self.config.get("max_batch_size", 0)) > 0
        self.module = load_module(model_dir / MODEL_PATH)
        self.model = self.module.TritonPythonModel()
        self.model.initialize({
            "model_config": config_json(model_dir), "model_instance_kind": "CPU",
            "model_instance_name": f"{self.config['name']}_0_0", "model_instance_device_id": "0",
            "model_repository": str(model_dir), "model_version": "1",
            "model_name": self.config["name"],
        })
        states = self.config["sequence_batching"]["state"]
        self.outputs = [self.config["output"][0]["name"]] + [s["output_name"] for s in states]
        # Inputs and state inputs of TYPE_BF16 (handed to the model as BF16 tensors).
        self.bf16_inputs = {t["name"] for t in self.config["input"] if t["data_type"] == BF16}
        self.bf16_inputs |= {s["input_name"] for s in states if s["data_type"] == BF16}

    def _tensor(self, name: str, array: np.ndarray) -> Tensor:
        if name in self.bf16_inputs:
            return Tensor(name, to_bf16_bits(array), bf16=True)
        return Tensor(name, array)

    def requests(self, feed: dict[str, np.ndarray]):
        """One request per batch row (the whole feed when not batched)."""
        rows = len(next(iter(feed.values()))) if self.batched else 1
        if not self.batched:
            return [InferenceRequest([self._tensor(n, a) for n, a in feed.items()], self.outputs)]
        return [InferenceRequest([self._tensor(n, a[i:i + 1]) for n, a in feed.items()],
                                 self.outputs)
                for i in range(rows)]

    def execute(self, requests):
        """Run model.execute; raise the first error response."""
        responses = self.model.execute(requests)
        if len(responses) != len(requests):
            raise PythonModelError(f"{len(responses)} responses for {len(requests)} requests")
        for response in responses:
            if response.has_error():
                raise PythonModelError(response.error().message())
        return responses

    def __call__(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run every model input by name; returns OUTPUT and every state output."""
        responses = self.execute(self.requests(feed))
        results = {}
        for name in self.outputs:
            arrays = [_output(response, name) for response in responses]
            results[name] = np.concatenate(arrays) if self.batched else arrays[0]
        return results


def _output(response: InferenceResponse, name: str) -> np.ndarray:
    """The named output of a response, BF16 as ml_dtypes bfloat16 (an error when it is absent)."""
    for tensor in response.output_tensors():
        if tensor.name() == name:
            if tensor.is_bf16():
                return from_bf16_bits(tensor.raw())
            return tensor.as_numpy()
    names = [tensor.name() for tensor in response.output_tensors()]
    raise PythonModelError(f"response has no '{name}' output; it has {names}")


def load(model_dir: pathlib.Path) -> PythonModelRunner:
    """A runner for the python model in model_dir."""
    return PythonModelRunner(model_dir)
