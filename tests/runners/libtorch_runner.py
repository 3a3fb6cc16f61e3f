"""Runs a generated TorchScript model with torch, as Triton's pytorch backend would.

`load(model_dir)` reads `<model_dir>/config.pbtxt`, applies the backend's
naming rule and loads `<model_dir>/1/model.pt` with `torch.jit.load`. The
runner it returns takes every tensor by config name (as verification.triton_sim
feeds them) and calls `forward` positionally: each input, control and state
input at the position its `<name>__<index>` suffix names; outputs are read
back by position (OUTPUT__0 is element 0 of the returned tuple,
OUTPUT_STATE__1 element 1, ...). Like the backend it refuses a name without
the suffix, positions that are not 0..n-1, a forward() whose argument count
differs from the config's inputs, a string input that is not 1-D
(strings travel as List[str]), and a config data type it has no torch type
for (TYPE_UINT16, TYPE_UINT32, TYPE_UINT64, TYPE_BF16: "unsupported datatype
..."). Numeric tensors keep the dtype the sim gives them, which it takes from
the config. As the backend does on every execution, a returned tensor whose
dtype is not its config type fails the request ("configuration expects
datatype ..."); a tensor without dimensions is returned as it is (the sim
applies the backend's scalar rule).
"""

import pathlib
from typing import Callable, Dict, List

import numpy as np
import torch

from generators.model_config import parse_config
from generators.triton_schema import model_config_pb2 as mc
from verification.triton_sim_state import TritonError

MODEL_PATH = pathlib.Path("1") / "model.pt"
Runner = Callable[[Dict[str, np.ndarray]], Dict[str, np.ndarray]]
# The config types the pytorch backend maps to a torch type
# (libtorch_utils.cc ModelConfigDataTypeToTorchType, r24.10), as Triton names
# them in its messages; TYPE_STRING travels as List[str].
_TORCH_TYPES = {
    "TYPE_BOOL": torch.bool, "TYPE_UINT8": torch.uint8, "TYPE_INT8": torch.int8,
    "TYPE_INT16": torch.int16, "TYPE_INT32": torch.int32, "TYPE_INT64": torch.int64,
    "TYPE_FP16": torch.float16, "TYPE_FP32": torch.float32, "TYPE_FP64": torch.float64,
}
_CONFIG_TYPES = {torch_type: name for name, torch_type in _TORCH_TYPES.items()}


class LoadError(ValueError):
    """The pytorch backend would refuse to load the model."""

    def __init__(self, message: str) -> None:
        super().__init__(f"pytorch backend would not load the model: {message}")


class NamingRuleError(LoadError):
    """The config breaks the pytorch backend's `<name>__<index>` rule."""


class UnsupportedTypeError(LoadError):
    """A config tensor has a data type the pytorch backend has no torch type for."""


def position(name: str) -> int:
    """The forward() / tuple position a tensor name carries (`START__2` -> 2).

    As the backend: the index is what follows the first `__` and must be all digits.
    """
    cut = name.find("__")
    index = name[cut + 2:] if cut > 0 else ""
    if not (index.isascii() and index.isdigit()):
        raise NamingRuleError(f"'{name}' does not follow the <name>__<index> naming convention")
    return int(index)


def _ordered(names: List[str], what: str) -> List[str]:
    """Names sorted by position; the positions must be exactly 0..n-1."""
    by_position = sorted(names, key=position)
    if [position(n) for n in by_position] != list(range(len(names))):
        raise NamingRuleError(f"{what} positions {sorted(map(position, names))} are not"
                              f" 0..{len(names) - 1}")
    return by_position


def _to_torch(name: str, array: np.ndarray):
    if array.dtype != np.object_:
        # A C-ordered copy that keeps a scalar state's 0 dimensions
        # (np.ascontiguousarray would make it [1]).
        return torch.from_numpy(np.array(array, order="C"))
    if array.ndim != 1:
        raise NamingRuleError(f"string input '{name}' has shape {array.shape}; the pytorch"
                              " backend passes strings as a 1-D List[str] only")
    return [b.decode() if isinstance(b, bytes) else str(b) for b in array]


def _to_numpy(value) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.numpy()
    return np.array([s.encode() for s in value], dtype=object)


def _config_types(config: mc.ModelConfig) -> Dict[str, str]:
    """Each output and output state name -> its config type, checked as the backend loads.

    Raises:
        UnsupportedTypeError: with the backend's message, for the first
            input, input state, output or output state (its order) whose type
            has no torch type.
    """
    model = config.name
    tensors = [(t.name, t.data_type, "input") for t in config.input]
    tensors += [(s.input_name, s.data_type, "input state") for s in config.sequence_batching.state]
    tensors += [(t.name, t.data_type, "output") for t in config.output]
    tensors += [(s.output_name, s.data_type, "state") for s in config.sequence_batching.state]
    types = {}
    for name, data_type, what in tensors:
        type_name = mc.DataType.Name(data_type)
        if type_name not in _TORCH_TYPES and type_name != "TYPE_STRING":
            raise UnsupportedTypeError(f"unsupported datatype {type_name} for {what} '{name}'"
                                       f" for model '{model}'")
        if what in ("output", "state"):
            types[name] = type_name
    return types


def _checked(name: str, value, config_type: str) -> np.ndarray:
    """A returned tensor as numpy; TritonError when its dtype is not its config type."""
    if isinstance(value, torch.Tensor):
        provided = _CONFIG_TYPES.get(value.dtype, "TYPE_<invalid>")
        if provided != config_type:
            raise TritonError(f"configuration expects datatype {config_type} for output"
                              f" '{name}', model provides {provided}")
    return _to_numpy(value)


def load(model_dir: pathlib.Path) -> Runner:
    """A runner for the TorchScript model in model_dir (CPU)."""
    model_dir = pathlib.Path(model_dir)
    config = parse_config((model_dir / "config.pbtxt").read_text())
    batching = config.sequence_batching
    inputs = _ordered([t.name for t in config.input]
                      + [c.name for c in batching.control_input]
                      + [s.input_name for s in batching.state], "input")
    outputs = _ordered([t.name for t in config.output]
                       + [s.output_name for s in batching.state], "output")
    config_types = _config_types(config)
    module = torch.jit.load(str(model_dir / MODEL_PATH), map_location="cpu")
    module.eval()
    arguments = len(module.forward.schema.arguments) - 1  # without self
    if arguments != len(inputs):
        raise NamingRuleError(f"forward() takes {arguments} arguments, the config declares"
                              f" {len(inputs)} inputs {inputs}")

    def run(feed: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        missing = sorted(set(inputs) - set(feed))
        if missing:
            raise KeyError(f"inputs {missing} are not fed; fed {sorted(feed)}")
        with torch.no_grad():
            results = module(*[_to_torch(name, feed[name]) for name in inputs])
        if not isinstance(results, tuple) or len(results) != len(outputs):
            raise ValueError(f"forward() returned {type(results).__name__} of"
                             f" {len(results)} items; the config declares outputs {outputs}")
        return {name: _checked(name, value, config_types[name])
                for name, value in zip(outputs, results, strict=True)}

    return run
