"""Triton python-backend model implementing the implicit-state sequence contract.

Triton's python backend never hands `OUTPUT_STATE` back to the sequence
batcher (it has no TRITONBACKEND_StateUpdate call), so on a stock server the
injected `INPUT_STATE` keeps its start-of-sequence value on every step. This
model therefore keeps each sequence's running state itself, keyed by the
`CORRID` control, and returns what the other backends' models compute.

The config's `state` entries are the model's state pairs, k = 0, 1, ... in
config order (one entry, INPUT_STATE -> OUTPUT_STATE, by default). Pair k
computes, element-wise, new_k = (k + 1) * X + S_k, where S_k is the pair's
running state: on START the injected state input (the pair's initial state)
when the config gives the pair one, else 0; afterwards the previous new_k.
Each pair's state output returns new_k (when requested) and OUTPUT is
sum_k (k + 1) * new_k, which tells the pairs apart (a model whose states
were swapped would answer differently); a single pair gives OUTPUT =
OUTPUT_STATE = X + S.
The states are dropped on END and evicted after the sequence has been idle
for twice `max_sequence_idle_microseconds`, so memory stays bounded when a
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
# One state pair: its tensor names, its weight k + 1 and whether START seeds it
# from the injected state input (the config gives it an initial_state).
StatePair = collections.namedtuple("StatePair", "input output weight has_initial_state")
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
        self.state_pairs = _state_pairs(batching.get("state", []))
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


def _state_pairs(states):
    """The StatePair of each config `state` entry, in config order (pair k weighs k + 1)."""
    if not states:
        raise ConfigError("sequence_batching declares no state; add at least one state entry")
    pairs = [StatePair(s["input_name"], s["output_name"], k + 1, bool(s.get("initial_state")))
             for k, s in enumerate(states)]
    names = [name for pair in pairs for name in (pair.input, pair.output)]
    if len(set(names)) != len(names):
        raise ConfigError(f"state tensor names {names} repeat; each must be distinct")
    return pairs


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
    """Adds (k + 1) times each request's INPUT to state pair k of its sequence."""

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
            output, pair_outputs = self._step(request)
        except SequenceError as err:
            return _error_response(str(err))
        except Exception as err:  # noqa: BLE001 - one bad request must not fail its batch
            return _error_response(f"{type(err).__name__}: {err}")
        outputs = [pb_utils.Tensor(self.spec.output_name, output)]
        requested = request.requested_output_names()
        outputs += [pb_utils.Tensor(pair.output, data)
                    for pair, data in zip(self.spec.state_pairs, pair_outputs, strict=True)
                    if pair.output in requested]
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

    def _encode(self, numbers):
        """Numbers as the I/O type: decimal text for strings, else the model dtype."""
        if self.spec.is_string:
            return _to_strings(numbers)
        return numbers.astype(self.spec.dtype, copy=False)

    def _step(self, request):
        """(OUTPUT, each pair's state output) of a request; advances its sequence when READY."""
        if not self._flag(request, "ready"):
            # Padding request: Triton discards its output; leave every state alone.
            data = np.array(self._tensor(request, self.spec.input_name), copy=True)
            return data, [data] * len(self.spec.state_pairs)
        corrid = self._scalar(request, self.spec.corrid)
        x = self._numbers(request, self.spec.input_name)
        if self._flag(request, "start"):
            states = [self._initial_state(request, pair) for pair in self.spec.state_pairs]
        else:
            states = self.states.get(corrid)
            if states is None:
                raise SequenceError(
                    f"sequence {corrid} has no running state in this model instance; it was"
                    " never started here or was idle too long: resend it with the START flag"
                )
        results = [self._advance(x, pair, state)
                   for pair, state in zip(self.spec.state_pairs, states, strict=True)]
        if self._flag(request, "end"):
            self.states.drop(corrid)
        else:
            self.states.put(corrid, results)
        total = results[0]
        for pair, result in zip(self.spec.state_pairs[1:], results[1:], strict=True):
            weighted = pair.weight * result
            if not self.spec.is_string:
                weighted = weighted.astype(self.spec.dtype, copy=False)
            total = total + weighted  # same dtype on both sides: no promotion
        return self._encode(total), [self._encode(result) for result in results]

    def _advance(self, x, pair, state):
        """The pair's new state: weight * INPUT + its running state, in the model dtype."""
        try:
            result = pair.weight * x + state
        except ValueError:
            raise SequenceError(
                f"INPUT shape {list(x.shape)} does not broadcast with the sequence's"
                f" {pair.input} state shape {list(np.shape(state))}"
            ) from None
        return result if self.spec.is_string else result.astype(self.spec.dtype, copy=False)

    def _initial_state(self, request, pair):
        """A pair's state at START: Triton's injected initial state, else zero."""
        if pair.has_initial_state:
            return self._numbers(request, pair.input)
        return 0
