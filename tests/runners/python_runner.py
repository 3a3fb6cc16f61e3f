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
"""

import importlib.util
import itertools
import json
import pathlib
import sys
import types
from collections.abc import Iterable

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


class Tensor:
    """Stand-in for `pb_utils.Tensor`: a named numpy array."""

    def __init__(self, name: str, array: np.ndarray) -> None:
        """Wrap an array under a tensor name."""
        self._name, self._array = name, np.asarray(array)

    def name(self) -> str:
        """The tensor name."""
        return self._name

    def as_numpy(self) -> np.ndarray:
        """The tensor data."""
        return self._array


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
    for item in (Tensor, TritonError, InferenceRequest, InferenceResponse,
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

    def requests(self, feed: dict[str, np.ndarray]):
        """One request per batch row (the whole feed when not batched)."""
        rows = len(next(iter(feed.values()))) if self.batched else 1
        if not self.batched:
            return [InferenceRequest([Tensor(n, a) for n, a in feed.items()], self.outputs)]
        return [InferenceRequest([Tensor(n, a[i:i + 1]) for n, a in feed.items()], self.outputs)
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
    """The named output of a response (an error when the model left it out)."""
    for tensor in response.output_tensors():
        if tensor.name() == name:
            return tensor.as_numpy()
    names = [tensor.name() for tensor in response.output_tensors()]
    raise PythonModelError(f"response has no '{name}' output; it has {names}")


def load(model_dir: pathlib.Path) -> PythonModelRunner:
    """A runner for the python model in model_dir."""
    return PythonModelRunner(model_dir)
