"""A model's configuration as Triton serves it (`GET /v2/models/<model>/config`), against the generated one.

Triton answers with the `ModelConfig` as JSON: proto field names, enums by
name, every field without presence printed with its default, int64 fields
turned back into numbers (protobuf's JSON writes them as strings), and the
fields Triton fills in itself (`ADDITIONS`, from its model configuration
documentation: the backend a platform implies, the default version policy,
optimization defaults, the default model file name, instance group names
and counts). `expected` renders a generated config that way, without the
additions; `compare` walks a served configuration beside it, field by field,
and returns every difference that is neither an allowed addition nor the
catalogued rendering of initial-state dims as strings (catalogue entry
config-initial-state-dims), together with how those dims were rendered.
`render` is the served form a simulated server gives (verification/triton_sim.py).
"""

import dataclasses
import re
from typing import Callable, List, Optional, Tuple

from google.protobuf import descriptor as pb_descriptor
from tritonclient.grpc import model_config_pb2 as mc

_FD = pb_descriptor.FieldDescriptor
_INT64 = {_FD.TYPE_INT64, _FD.TYPE_UINT64, _FD.TYPE_SINT64, _FD.TYPE_FIXED64, _FD.TYPE_SFIXED64}
INITIAL_DIMS = re.compile(r"^sequence_batching\.state\[\d+\]\.initial_state\[\d+\]\.dims$")
# Platform -> the backend Triton names for it, and the model file it loads by default.
_PLATFORMS = {
    "onnxruntime_onnx": ("onnxruntime", "model.onnx"),
    "tensorflow_savedmodel": ("tensorflow", "model.savedmodel"),
    "pytorch_libtorch": ("pytorch", "model.pt"),
    "tensorrt_plan": ("tensorrt", "model.plan"),
}
_BACKEND_FILES = {"python": "model.py"}
DIMS_AS_STRINGS, DIMS_AS_NUMBERS = "strings", "numbers"


@dataclasses.dataclass(frozen=True)
class Addition:
    """A field Triton fills in when the config leaves it at its default.

    Attributes:
        path: a regular expression over the field's dotted path.
        rule: what the served value may be, in words.
        accepts: the served value -> whether the rule holds.
    """

    path: str
    rule: str
    accepts: Callable[[object], bool]


def _non_empty_string(value) -> bool:
    return isinstance(value, str) and bool(value)


ADDITIONS: Tuple[Addition, ...] = (
    Addition(r"backend", "the backend the platform implies", _non_empty_string),
    Addition(r"version_policy", "the default policy, the latest version",
             lambda v: v == {"latest": {"num_versions": 1}}),
    Addition(r"optimization", "Triton's optimization defaults", lambda v: isinstance(v, dict)),
    Addition(r"default_model_filename", "the platform's model file name", _non_empty_string),
    Addition(r"instance_group\[\d+\]\.name", "<model>_<index>", _non_empty_string),
    Addition(r"instance_group\[\d+\]\.count", "a positive count (core's default per kind)",
             lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0),
)


@dataclasses.dataclass(frozen=True)
class Difference:
    """A field whose served value is not the generated one."""

    path: str
    generated: object
    served: object

    def __str__(self) -> str:
        """One line naming the field and both values."""
        return f"{self.path}: generated {self.generated!r}, served {self.served!r}"


def _value(field, value):
    if field.type == _FD.TYPE_MESSAGE:
        return _message(value)
    if field.type == _FD.TYPE_ENUM:
        return field.enum_type.values_by_number[value].name
    return int(value) if field.type in _INT64 else value


def _message(message) -> dict:
    out = {}
    for field in message.DESCRIPTOR.fields:
        value = getattr(message, field.name)
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value_field = field.message_type.fields_by_name["value"]
            out[field.name] = {k: _value(value_field, v) for k, v in value.items()}
        elif field.is_repeated:
            out[field.name] = [_value(field, v) for v in value]
        elif field.has_presence:
            if message.HasField(field.name):
                out[field.name] = _value(field, value)
        else:
            out[field.name] = _value(field, value)
    return out


def expected(config: mc.ModelConfig) -> dict:
    """The generated config as Triton renders it, int64 fields as numbers, without additions."""
    return _message(config)


def render(config: mc.ModelConfig, dims_as_strings: bool) -> dict:
    """What a server gives for `config`: `expected` plus Triton's additions.

    With `dims_as_strings`, initial-state dims are strings, as released
    Triton renders them.
    """
    served = expected(config)
    backend, filename = _PLATFORMS.get(config.platform, (config.backend, ""))
    served["backend"] = served["backend"] or backend
    served["default_model_filename"] = (served["default_model_filename"] or filename
                                        or _BACKEND_FILES.get(config.backend, "model"))
    served.setdefault("version_policy", {"latest": {"num_versions": 1}})
    served.setdefault("optimization", {"priority": "PRIORITY_DEFAULT"})
    for index, group in enumerate(served["instance_group"]):
        group["name"] = group["name"] or f"{config.name}_{index}"
        group["count"] = group["count"] or 1
    if dims_as_strings:
        for state in served.get("sequence_batching", {}).get("state", []):
            for initial in state["initial_state"]:
                initial["dims"] = [str(d) for d in initial["dims"]]
    return served


def _walk(path: str, generated, served, out: List[Difference]) -> None:
    if isinstance(generated, dict) and isinstance(served, dict):
        for key in sorted(set(generated) | set(served)):
            sub = f"{path}.{key}" if path else key
            _walk(sub, generated.get(key, _ABSENT), served.get(key, _ABSENT), out)
    elif isinstance(generated, list) and isinstance(served, list) and len(generated) == len(served):
        if INITIAL_DIMS.match(path):  # compared whole: the catalogued rendering is a whole list
            if generated != served or not all(
                    _same_kind(g, s) for g, s in zip(generated, served, strict=True)):
                out.append(Difference(path, generated, served))
            return
        for index, (g, s) in enumerate(zip(generated, served, strict=True)):
            _walk(f"{path}[{index}]", g, s, out)
    elif generated != served or not _same_kind(generated, served):
        out.append(Difference(path, generated, served))


def _same_kind(generated, served) -> bool:
    """Same JSON kind: a number is a number (JSON writes the float 1.0 as 1), never a string."""
    number = (int, float)
    if isinstance(generated, bool) or isinstance(served, bool):
        return type(generated) is type(served)
    if isinstance(generated, number) and isinstance(served, number):
        return True
    return type(generated) is type(served)


class _Absent:
    def __repr__(self) -> str:
        return "(absent)"


_ABSENT = _Absent()


def _default(value) -> bool:
    return value is _ABSENT or value in ("", 0, [], {}) and not isinstance(value, bool)


def _allowed(difference: Difference) -> bool:
    return _default(difference.generated) and any(
        re.fullmatch(a.path, difference.path) and a.accepts(difference.served) for a in ADDITIONS)


def compare(config: mc.ModelConfig, served: dict) -> Tuple[List[Difference], Optional[str]]:
    """(differences beyond the allowed additions and the catalogued dims, the dims' rendering).

    The rendering is DIMS_AS_STRINGS when every initial-state dims list was
    served as exactly the decimal strings of the generated numbers (the
    catalogued bug), DIMS_AS_NUMBERS when served as the numbers, None when
    the config has no initial state with dims (a scalar state's empty dims
    render alike either way); any other rendering is a difference.
    """
    found: List[Difference] = []
    _walk("", expected(config), served, found)
    differences, renderings = [], set()
    for difference in found:
        if _allowed(difference):
            continue
        if INITIAL_DIMS.match(difference.path) and difference.served == [
                str(d) for d in difference.generated]:
            renderings.add(DIMS_AS_STRINGS)
            continue
        differences.append(difference)
    # Empty dims (a scalar state's) read the same either way: nothing to tell.
    has_dims = any(initial.dims for state in config.sequence_batching.state
                   for initial in state.initial_state)
    if has_dims and not renderings and not any(INITIAL_DIMS.match(d.path) for d in differences):
        renderings.add(DIMS_AS_NUMBERS)
    if len(renderings) > 1:
        differences.append(Difference("sequence_batching.state[*].initial_state[*].dims",
                                      "one rendering", "strings and numbers mixed"))
    return differences, (renderings.pop() if len(renderings) == 1 else None)
