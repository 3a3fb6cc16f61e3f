"""Triton python-backend model implementing the implicit-state sequence contract.

Triton's python backend never hands `OUTPUT_STATE` back to the sequence
batcher (it has no TRITONBACKEND_StateUpdate call), so on a stock server the
injected `INPUT_STATE` keeps its start-of-sequence value on every step. This
model therefore keeps each sequence's running state itself, keyed by the
`CORRID` control, and returns what the other backends' models compute:
OUTPUT = OUTPUT_STATE = X + S, element-wise, where S is the running sum
(reset on START to the configured initial state, or 0 without one). The
state is dropped on END and evicted after the sequence has been idle for
twice `max_sequence_idle_microseconds`, so memory stays bounded when a
client abandons a sequence. Padding (READY=0) requests never touch state.

String models (TYPE_STRING) accumulate numerically: each element is parsed
as a decimal integer (the empty string counts as 0) and the output is the
decimal text of the running sum. Every name and type is read from the model
config, so the same file serves every dtype, shape and batching variant.
"""

import collections
import json
import time

import numpy as np
import triton_python_backend_utils as pb_utils

_NUMPY_TYPES = {
    "TYPE_BOOL": np.bool_,
    "TYPE_INT8": np.int8,
    "TYPE_INT16": np.int16,
    "TYPE_INT32": np.int32,
    "TYPE_INT64": np.int64,
    "TYPE_UINT8": np.uint8,
    "TYPE_UINT16": np.uint16,
    "TYPE_UINT32": np.uint32,
    "TYPE_UINT64": np.uint64,
    "TYPE_FP16": np.float16,
    "TYPE_FP32": np.float32,
    "TYPE_FP64": np.float64,
    "TYPE_STRING": np.object_,
}
_CONTROL_VALUE_FIELDS = ("int32_false_true", "fp32_false_true", "bool_false_true")
_FLAG_KINDS = {
    "CONTROL_SEQUENCE_START": "start",
    "CONTROL_SEQUENCE_END": "end",
    "CONTROL_SEQUENCE_READY": "ready",
}
# Triton's own default when the config leaves the field out.
_DEFAULT_IDLE_MICROSECONDS = 1_000_000
# Triton's reaper ends a sequence after one idle period; waiting two keeps a
# sequence Triton still accepts from ever losing its state here.
_EVICTION_FACTOR = 2


class ConfigError(ValueError):
    """The model config lacks something this model needs."""

    def __init__(self, message):
        """Prefix the message so the load error names this model's rule."""
        super().__init__(f"implicit-state python model: {message}")


class Spec:
    """What this model reads from its config: tensor names, types, batching."""

    def __init__(self, config):
        """Parse the config dict Triton passes (args["model_config"] as JSON).

        Args:
            config: the model config, as Triton's JSON turned into a dict.

        Raises:
            ConfigError: when a required control, state or tensor is missing.
        """
        batching = config.get("sequence_batching") or {}
        self.batched = int(config.get("max_batch_size", 0)) > 0
        self.input_name, data_type = _single_tensor(config, "input")
        self.output_name, _ = _single_tensor(config, "output")
        self.dtype = _numpy_type(data_type)
        self.is_string = data_type == "TYPE_STRING"
        self.flags = {}  # "start"/"end"/"ready" -> (tensor name, true value)
        self.corrid = None
        for control_input in batching.get("control_input", []):
            for control in control_input.get("control", []):
                self._add_control(control_input["name"], control)
        for required in ("start", "ready"):
            if required not in self.flags:
                raise ConfigError(f"sequence_batching has no CONTROL_SEQUENCE_{required.upper()}")
        if self.corrid is None:
            raise ConfigError(
                "sequence_batching has no CONTROL_SEQUENCE_CORRID control; this model keys"
                " each sequence's state by it, so add one (data_type TYPE_UINT64)"
            )
        states = batching.get("state", [])
        if len(states) != 1:
            raise ConfigError(f"expected exactly one sequence_batching state, got {len(states)}")
        self.state_input = states[0]["input_name"]
        self.state_output = states[0]["output_name"]
        self.has_initial_state = bool(states[0].get("initial_state"))
        idle = int(batching.get("max_sequence_idle_microseconds") or _DEFAULT_IDLE_MICROSECONDS)
        self.idle_seconds = idle / 1e6

    def _add_control(self, name, control):
        kind = control.get("kind", "CONTROL_SEQUENCE_START")
        if kind == "CONTROL_SEQUENCE_CORRID":
            self.corrid = name
        elif kind in _FLAG_KINDS:
            values = [control.get(f) for f in _CONTROL_VALUE_FIELDS if control.get(f)]
            if not values or len(values[0]) != 2:
                raise ConfigError(f"control '{name}' has no [false, true] value pair")
            self.flags[_FLAG_KINDS[kind]] = (name, values[0][1])


def _single_tensor(config, kind):
    tensors = config.get(kind, [])
    if len(tensors) != 1:
        raise ConfigError(f"expected exactly one {kind}, got {len(tensors)}")
    return tensors[0]["name"], tensors[0]["data_type"]


def _numpy_type(data_type):
    if data_type not in _NUMPY_TYPES:
        raise ConfigError(f"unsupported data_type '{data_type}'")
    return _NUMPY_TYPES[data_type]


class SequenceStates:
    """Running state per correlation id, evicted when idle too long."""

    def __init__(self, idle_seconds, clock=time.monotonic):
        """Create an empty store.

        Args:
            idle_seconds: a state untouched this long is dropped.
            clock: monotonic time source (tests pass a fake one).
        """
        self._idle_seconds = idle_seconds
        self._clock = clock
        self._states = collections.OrderedDict()  # corrid -> (state, last use)

    def __len__(self):
        """Number of sequences holding state."""
        return len(self._states)

    def get(self, corrid):
        """The running state of a sequence, or None when it has none."""
        entry = self._states.get(corrid)
        return None if entry is None else entry[0]

    def put(self, corrid, state):
        """Store a sequence's new state and mark it as just used."""
        self._states[corrid] = (state, self._clock())
        self._states.move_to_end(corrid)

    def drop(self, corrid):
        """Forget a sequence (it ended)."""
        self._states.pop(corrid, None)

    def evict_idle(self):
        """Drop every sequence idle for longer than the limit (oldest first)."""
        limit = self._clock() - self._idle_seconds
        while self._states:
            corrid, (_, last_use) = next(iter(self._states.items()))
            if last_use >= limit:
                return
            del self._states[corrid]


class SequenceError(Exception):
    """A request this model cannot serve; becomes that request's error."""


def _to_numbers(array):
    """Parse a string tensor element-wise into Python ints ("" is 0)."""
    flat = [_parse_int(value) for value in array.reshape(-1)]
    numbers = np.empty(len(flat), dtype=np.object_)
    numbers[:] = flat
    return numbers.reshape(array.shape)


def _parse_int(value):
    text = value.decode("utf-8") if isinstance(value, bytes) else str(value)
    try:
        return int(text) if text.strip() else 0
    except ValueError:
        raise SequenceError(f"string element {text!r} is not a decimal integer") from None


def _to_strings(numbers):
    """Decimal text (as bytes) of each element of an int object array."""
    flat = [str(value).encode("utf-8") for value in numbers.reshape(-1)]
    text = np.empty(len(flat), dtype=np.object_)
    text[:] = flat
    return text.reshape(numbers.shape)


def _error_response(message):
    return pb_utils.InferenceResponse(output_tensors=[], error=pb_utils.TritonError(message))


class TritonPythonModel:
    """Adds each request's INPUT to its sequence's running state."""

    def initialize(self, args):
        """Read names and types from the config; start with no sequences.

        Args:
            args: Triton's initialize arguments; uses "model_config".
        """
        self.spec = Spec(json.loads(args["model_config"]))
        self.states = SequenceStates(self.spec.idle_seconds * _EVICTION_FACTOR)

    def execute(self, requests):
        """Serve each request on its own, in order; errors stay per request.

        Args:
            requests: the batch Triton scheduled (one request per slot).

        Returns:
            One InferenceResponse per request, in the same order.
        """
        self.states.evict_idle()
        return [self._respond(request) for request in requests]

    def finalize(self):
        """Forget every sequence."""
        self.states = SequenceStates(self.spec.idle_seconds * _EVICTION_FACTOR)

    def _respond(self, request):
        try:
            data = self._step(request)
        except SequenceError as err:
            return _error_response(str(err))
        except Exception as err:  # noqa: BLE001 - one bad request must not fail its batch
            return _error_response(f"{type(err).__name__}: {err}")
        outputs = [pb_utils.Tensor(self.spec.output_name, data)]
        if self.spec.state_output in request.requested_output_names():
            outputs.append(pb_utils.Tensor(self.spec.state_output, data))
        return pb_utils.InferenceResponse(output_tensors=outputs)

    def _tensor(self, request, name):
        tensor = pb_utils.get_input_tensor_by_name(request, name)
        if tensor is None:
            raise SequenceError(f"request has no '{name}' tensor")
        array = tensor.as_numpy()
        if self.spec.batched and array.shape[:1] != (1,):
            raise SequenceError(f"'{name}' must have batch size 1, got shape {list(array.shape)}")
        return array

    def _scalar(self, request, name):
        value = self._tensor(request, name).reshape(-1)[0]
        return value.item() if isinstance(value, np.generic) else value

    def _flag(self, request, kind):
        if kind not in self.spec.flags:
            return False
        name, true_value = self.spec.flags[kind]
        return bool(self._scalar(request, name) == true_value)

    def _numbers(self, request, name):
        """A data tensor as numbers: Python ints for strings, a copy otherwise."""
        array = self._tensor(request, name)
        return _to_numbers(array) if self.spec.is_string else array.astype(self.spec.dtype)

    def _step(self, request):
        """One request's OUTPUT; advances its sequence's state when READY."""
        if not self._flag(request, "ready"):
            # Padding request: Triton discards its output; leave every state alone.
            return np.array(self._tensor(request, self.spec.input_name), copy=True)
        corrid = self._scalar(request, self.spec.corrid)
        x = self._numbers(request, self.spec.input_name)
        if self._flag(request, "start"):
            state = self._initial_state(request)
        else:
            state = self.states.get(corrid)
            if state is None:
                raise SequenceError(
                    f"sequence {corrid} has no running state in this model instance; it was"
                    " never started here or was idle too long: resend it with the START flag"
                )
        try:
            result = x + state
        except ValueError:
            raise SequenceError(
                f"INPUT shape {list(x.shape)} does not broadcast with the sequence's"
                f" state shape {list(np.shape(state))}"
            ) from None
        if not self.spec.is_string:
            result = result.astype(self.spec.dtype, copy=False)
        if self._flag(request, "end"):
            self.states.drop(corrid)
        else:
            self.states.put(corrid, result)
        return _to_strings(result) if self.spec.is_string else result

    def _initial_state(self, request):
        """State at START: Triton's injected initial state, else zero."""
        if self.spec.has_initial_state:
            return self._numbers(request, self.spec.state_input)
        return 0
