"""Triton python-backend model of the state-coverage repositories: every state type and layout.

The builder (python_builder.py) writes this file as `model.py` for each
single-state variant that upstream's model (model.py) cannot serve: a state
of any numeric Triton type (TYPE_BOOL and TYPE_BF16 included), a state wider
than INPUT (INT32 -> INT64, FP16 -> FP32) and a state shaped unlike INPUT.
Like model.py it keeps each sequence's running state itself, keyed by the
`CORRID` control, because Triton's python backend never hands `OUTPUT_STATE`
back to the sequence batcher: S is, on START, the injected `INPUT_STATE`
(Triton's initial state) when the config gives the state an
`initial_state`, else zeros (false); afterwards the previous step's new
state. It is dropped on END and after twice `max_sequence_idle_microseconds`
idle; padding (READY=0) requests never touch it.

With X = INPUT cast to the state's type, the rule follows the config's state:

- numeric, the state's dims as INPUT's: new = X + S (element-wise; a
  width-1 first state broadcasts over a wider INPUT);
- TYPE_BOOL: new = S xor X, the running parity;
- dims [2] under an INPUT of dims [1]: S = [running sum, step count],
  new = [S[0] + X, S[1] + 1] and OUTPUT = new[0] + 100 * new[1];
- dims [] (a scalar state, per batch entry): new = X + S as a scalar, and
  OUTPUT = X + S with INPUT's shape.

OUTPUT is new wherever the rule names no other value; `OUTPUT_STATE` returns
new when requested. Every sum is computed in the state's numpy type; TYPE_BF16,
which numpy lacks, is computed in float32 and rounded back to bfloat16. The
python backend refuses `as_numpy()` on a BF16 tensor and builds tensors from
DLPack only, so BF16 data crosses as its raw 16-bit patterns: an input's
DLPack capsule is relabelled UINT16 to read it, and a UINT16 tensor's capsule
is relabelled BF16 to answer one (the DLPack type code is the only change).
"""

import collections
import ctypes
import json
import time

import numpy as np
import triton_python_backend_utils as pb_utils

# TYPE_BF16 is computed in float32 and carried as bfloat16 bit patterns.
_NUMPY_TYPES = {
    "TYPE_BOOL": np.bool_, "TYPE_INT8": np.int8, "TYPE_INT16": np.int16,
    "TYPE_INT32": np.int32, "TYPE_INT64": np.int64, "TYPE_UINT8": np.uint8,
    "TYPE_UINT16": np.uint16, "TYPE_UINT32": np.uint32, "TYPE_UINT64": np.uint64,
    "TYPE_FP16": np.float16, "TYPE_FP32": np.float32, "TYPE_FP64": np.float64,
    "TYPE_BF16": np.float32,
}
BF16 = "TYPE_BF16"
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
# The [sum, count] state's OUTPUT weighs the count by this.
COUNT_WEIGHT = 100
# DLPack type codes (dlpack.h DLDataTypeCode).
_DL_UINT = 1
_DL_BFLOAT = 4


class ConfigError(ValueError):
    """The model config lacks something this model needs."""

    def __init__(self, message):
        """Prefix the message so the load error names this model's rule."""
        super().__init__(f"implicit-state python model: {message}")


class SequenceError(Exception):
    """A request this model cannot serve; becomes that request's error."""


def _numpy_type(data_type):
    if data_type not in _NUMPY_TYPES:
        raise ConfigError(
            f"unsupported data_type '{data_type}'; this model serves {sorted(_NUMPY_TYPES)}")
    return _NUMPY_TYPES[data_type]


def _single(config, kind):
    entries = config.get(kind, [])
    if len(entries) != 1:
        raise ConfigError(f"expected exactly one {kind}, got {len(entries)}")
    return entries[0]


def _dims(entry):
    return tuple(int(d) for d in entry.get("dims", []))


class Spec:
    """What this model reads from its config: names, types, dims, controls, the rule."""

    def __init__(self, config):
        """Parse the config dict Triton passes (args["model_config"] as JSON).

        Args:
            config: the model config, as Triton's JSON turned into a dict.

        Raises:
            ConfigError: when a control, the state or a tensor is missing or unsupported.
        """
        batching = config.get("sequence_batching") or {}
        self.batched = int(config.get("max_batch_size", 0)) > 0
        data, output, state = (_single(config, "input"), _single(config, "output"),
                               _single(batching, "state"))
        self.input_name, self.input_type = data["name"], data["data_type"]
        self.output_name, self.output_type = output["name"], output["data_type"]
        self.state_input, self.state_output = state["input_name"], state["output_name"]
        self.state_type = state["data_type"]
        for data_type in (self.input_type, self.output_type, self.state_type):
            _numpy_type(data_type)
        self.has_initial_state = bool(state.get("initial_state"))
        self.rule = _rule(_dims(data), _dims(state), self.state_type)
        self.state_dims = tuple(1 if d == -1 else d for d in _dims(state))
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
                " each sequence's state by it, so add one (data_type TYPE_UINT64)")
        idle = int(batching.get("max_sequence_idle_microseconds") or _DEFAULT_IDLE_MICROSECONDS)
        self.idle_seconds = idle / 1e6

    @property
    def compute_type(self):
        """The numpy type every sum is computed in (the state's; float32 for BF16)."""
        return _NUMPY_TYPES[self.state_type]

    def _add_control(self, name, control):
        kind = control.get("kind", "CONTROL_SEQUENCE_START")
        if kind == "CONTROL_SEQUENCE_CORRID":
            self.corrid = name
        elif kind in _FLAG_KINDS:
            values = [control.get(f) for f in _CONTROL_VALUE_FIELDS if control.get(f)]
            if not values or len(values[0]) != 2:
                raise ConfigError(f"control '{name}' has no [false, true] value pair")
            self.flags[_FLAG_KINDS[kind]] = (name, values[0][1])


def _rule(input_dims, state_dims, state_type):
    """Which update the state's dims and type select (see the module doc)."""
    if state_type == "TYPE_BOOL":
        rule = "xor"
    elif state_dims == ():
        rule = "scalar"
    elif input_dims == (1,) and state_dims == (2,):
        rule = "sum_count"
    else:
        rule = "sum"
    if rule in ("xor", "sum") and state_dims != input_dims:
        raise ConfigError(
            f"state dims {list(state_dims)} with INPUT dims {list(input_dims)} and type"
            f" {state_type} define no rule; use INPUT's dims, [2] (sum and count) under"
            " INPUT dims [1], or [] (a scalar) for a numeric state")
    return rule


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


class _DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class _DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class _DLTensor(ctypes.Structure):
    """The head of dlpack.h's DLManagedTensor (its first member is this DLTensor)."""

    _fields_ = [("data", ctypes.c_void_p), ("device", _DLDevice), ("ndim", ctypes.c_int32),
                ("dtype", _DLDataType)]


_capsule_pointer = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.py_object, ctypes.c_char_p)(
    ("PyCapsule_GetPointer", ctypes.pythonapi))


def _relabelled(tensor, code, name):
    """A tensor sharing `tensor`'s 16-bit data, its DLPack type code set to `code`."""
    capsule = tensor.to_dlpack()
    head = _DLTensor.from_address(_capsule_pointer(capsule, b"dltensor"))
    if head.dtype.bits != 16 or head.dtype.lanes != 1:
        raise SequenceError(f"'{name}' is not a 16-bit tensor (DLPack bits {head.dtype.bits})")
    head.dtype.code = code
    return pb_utils.Tensor.from_dlpack(name, capsule)


def bf16_to_float32(bits):
    """float32 values of bfloat16 bit patterns (uint16): the high half of each float32."""
    return (bits.astype(np.uint32) << 16).view(np.float32)


def float32_to_bf16(values):
    """bfloat16 bit patterns (uint16) of float32 values, rounded to nearest even."""
    values = np.asarray(values, dtype=np.float32, order="C")
    bits = values.view(np.uint32).astype(np.uint64)  # no wrap-around while rounding
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    return np.where(np.isnan(values), (bits >> 16) | 0x40, rounded).astype(np.uint16)


def _error_response(message):
    return pb_utils.InferenceResponse(output_tensors=[], error=pb_utils.TritonError(message))


class TritonPythonModel:
    """Applies the config's state rule to each request's INPUT and its sequence's state."""

    def initialize(self, args):
        """Read names, types and the rule from the config; start with no sequences.

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
            output, state = self._step(request)
            outputs = [self._encode(self.spec.output_name, output, self.spec.output_type)]
            if self.spec.state_output in request.requested_output_names():
                outputs.append(self._encode(self.spec.state_output, state, self.spec.state_type))
        except SequenceError as err:
            return _error_response(str(err))
        except Exception as err:  # noqa: BLE001 - one bad request must not fail its batch
            return _error_response(f"{type(err).__name__}: {err}")
        return pb_utils.InferenceResponse(output_tensors=outputs)

    def _tensor(self, request, name):
        tensor = pb_utils.get_input_tensor_by_name(request, name)
        if tensor is None:
            raise SequenceError(f"request has no '{name}' tensor")
        return tensor

    def _array(self, request, name, data_type=None):
        """A tensor's data; a BF16 tensor's read through DLPack as its bit patterns."""
        tensor = self._tensor(request, name)
        if data_type == BF16:
            tensor = _relabelled(tensor, _DL_UINT, name)
        array = tensor.as_numpy()
        if self.spec.batched and array.shape[:1] != (1,):
            raise SequenceError(f"'{name}' must have batch size 1, got shape {list(array.shape)}")
        return array

    def _numbers(self, request, name, data_type):
        """A data tensor in the compute type."""
        array = self._array(request, name, data_type)
        if data_type == BF16:
            return bf16_to_float32(np.array(array, dtype=np.uint16))
        return array.astype(self.spec.compute_type)

    def _encode(self, name, values, data_type):
        """An output tensor of the config's type (BF16 answered through DLPack)."""
        if data_type != BF16:
            return pb_utils.Tensor(name, np.asarray(values, dtype=_NUMPY_TYPES[data_type], order="C"))
        return _relabelled(pb_utils.Tensor(name, float32_to_bf16(values)), _DL_BFLOAT, name)

    def _scalar(self, request, name):
        value = self._array(request, name).reshape(-1)[0]
        return value.item() if isinstance(value, np.generic) else value

    def _flag(self, request, kind):
        if kind not in self.spec.flags:
            return False
        name, true_value = self.spec.flags[kind]
        return bool(self._scalar(request, name) == true_value)

    def _zero_state(self):
        lead = (1,) if self.spec.batched else ()
        return np.zeros(lead + self.spec.state_dims, dtype=self.spec.compute_type)

    def _step(self, request):
        """(OUTPUT, new state) of a request; advances its sequence when READY."""
        x = self._numbers(request, self.spec.input_name, self.spec.input_type)
        if not self._flag(request, "ready"):
            # Padding request: Triton discards its outputs; no state is read or written.
            return self._advance(x, self._zero_state())
        corrid = self._scalar(request, self.spec.corrid)
        if self._flag(request, "start"):
            state = self._initial_state(request)
        else:
            state = self.states.get(corrid)
            if state is None:
                raise SequenceError(
                    f"sequence {corrid} has no running state in this model instance; it was"
                    " never started here or was idle too long: resend it with the START flag")
        output, new_state = self._advance(x, state)
        if self._flag(request, "end"):
            self.states.drop(corrid)
        else:
            self.states.put(corrid, new_state)
        return output, new_state

    def _initial_state(self, request):
        """The state at START: Triton's injected initial state, else zeros."""
        if not self.spec.has_initial_state:
            return self._zero_state()
        state = self._numbers(request, self.spec.state_input, self.spec.state_type)
        expected = self._zero_state().shape
        if self.spec.rule in ("sum_count", "scalar") and state.shape != expected:
            raise SequenceError(
                f"{self.spec.state_input} holds shape {list(state.shape)} at START, not the"
                f" configured {list(expected)}")
        return state

    def _advance(self, x, state):
        """(OUTPUT, new state) of the config's rule; a BF16 state keeps bfloat16 precision."""
        output, new_state = self._apply_rule(x, state)
        if self.spec.state_type == BF16:  # as Triton would hold it; OUTPUT rounds when encoded
            new_state = bf16_to_float32(float32_to_bf16(new_state))
        return output, new_state

    def _apply_rule(self, x, state):
        """(OUTPUT, new state) of the config's rule, in the compute type."""
        compute = self.spec.compute_type
        x = x.astype(compute, copy=False)
        if self.spec.rule == "sum_count":
            total = x + state[..., :1]
            count = state[..., 1:] + compute(1)
            new_state = np.concatenate([total, count], axis=-1)
            return total + compute(COUNT_WEIGHT) * count, new_state
        if self.spec.rule == "scalar":
            total = x + state[..., np.newaxis]
            return total, total.reshape(state.shape)
        try:
            new_state = np.logical_xor(state, x) if self.spec.rule == "xor" else x + state
        except ValueError:
            raise SequenceError(
                f"INPUT shape {list(x.shape)} does not broadcast with the sequence's"
                f" {self.spec.state_input} state shape {list(state.shape)}") from None
        return new_state, new_state
