"""The implicit-state buffers of `verification.triton_sim`, as Triton's sequence batcher makes them.

Written from CONTRACT.md section 4 and the reference's section 4.2, not from
the generators. A config may declare any number of `state` entries; each is
a `StateEntry` with its own names, type, initial value and data file, and a
sequence holds one buffer per entry. At START (or when a slot has none) a
buffer has shape [1] (batched) + state dims with -1 -> 1 and holds zeros,
the entry's initial-state file's bytes or, without an initial_state, random
bytes standing in for uninitialized memory (strings: empty).

Every numeric Triton type is a numpy type here (TYPE_BOOL numpy's `bool`);
TYPE_BF16, which numpy lacks, is `ml_dtypes.bfloat16`, the type the pinned
tritonclient sends and returns BF16 tensors as (and generators/dtypes.py's
clients' table names): runners take and give BF16 tensors of that type.

A scalar state (dims []) gets a buffer holding no bytes at all in released
Triton (server issue 3901, catalogue entry 3901; measured on 2.51 with zero
and file initial states alike). What a backend builds from a state input
whose buffers hold fewer elements than its shape is `collect_state`'s
`SHORT_STATE` rule.

String (TYPE_STRING) states follow Triton core (src/sequence_state.cc): a
data file of any size is copied in, then every string state is zeroed
(SetStringDataToZero). A buffer whose size is not a multiple of 4 fails
that with core's error at each sequence start (`SequenceStateError`; the
real server logs it and the onnxruntime backend then crashes); otherwise it
holds one empty string per 4 bytes, whatever the file said.

`SimError`, the simulation's base error, and `TritonError` live here so that
both modules raise them; `verification.triton_sim` re-exports them. So do
the two rules a batch goes through: `collect_state` (how a backend collects
rows whose states differ in shape, catalogue entry ragged-state-batch;
buffers holding too few elements, entry 3901) and
`hand_back` (which input state an output state updates, entry 8586).
"""

import dataclasses
import math
import pathlib
import struct
from typing import List, Optional, Tuple

import ml_dtypes
import numpy as np
from tritonclient.grpc import model_config_pb2 as mc

_NUMPY_TYPES = {
    "TYPE_BOOL": np.bool_, "TYPE_INT8": np.int8, "TYPE_INT16": np.int16,
    "TYPE_INT32": np.int32, "TYPE_INT64": np.int64, "TYPE_UINT8": np.uint8,
    "TYPE_UINT16": np.uint16, "TYPE_UINT32": np.uint32, "TYPE_UINT64": np.uint64,
    "TYPE_FP16": np.float16, "TYPE_FP32": np.float32, "TYPE_FP64": np.float64,
    "TYPE_BF16": ml_dtypes.bfloat16, "TYPE_STRING": np.object_,
}


class SimError(Exception):
    """Base class: the simulation cannot go on (bad model, config or use)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)


class SequenceStateError(SimError):
    """Triton core cannot set up a sequence's state (it logs this and the sequence breaks)."""

    def __init__(self, message: str) -> None:
        super().__init__(f"Failed to initialize sequence state: {message}")


# Core's SetStringDataToZero message (src/sequence_state.cc).
NOT_MULTIPLE_OF_4 = ("The total byte size must be a multiple of 4 when setting the sequence"
                     " state to zero.")


def numpy_type(data_type: int):
    """The numpy type of a ModelConfig DataType value (TYPE_BF16: ml_dtypes.bfloat16)."""
    return _NUMPY_TYPES[mc.DataType.Name(data_type)]


def parse_bytes_tensor(blob: bytes) -> List[bytes]:
    """Elements of a serialized BYTES tensor (4-byte LE length + bytes each)."""
    elements, offset = [], 0
    while offset < len(blob):
        if offset + 4 > len(blob):
            raise SimError(f"serialized BYTES tensor ends inside a length at byte {offset}")
        (size,) = struct.unpack_from("<I", blob, offset)
        offset += 4
        if offset + size > len(blob):
            raise SimError(f"incomplete string data: element of {size} bytes at byte {offset}")
        elements.append(blob[offset:offset + size])
        offset += size
    return elements


class Garbage:
    """Stand-in for uninitialized memory: random bytes (strings: empty).

    Floats are random whole numbers of magnitude 1..2**20 instead (float16
    and bfloat16: 1..2**10): raw bytes are tiny (vanishing in a sum) about
    40% of the time, and NaN would fail models that gate by multiplication,
    which the contract allows (reference section 3, robustness note).
    """

    def __init__(self, seed: int) -> None:
        """A seeded source, so a failing test fails the same way again."""
        self._rng = np.random.default_rng(seed)

    def __call__(self, shape: Tuple[int, ...], dtype) -> np.ndarray:
        """An array of `shape` and `dtype` holding garbage."""
        dtype = np.dtype(dtype)
        if dtype == np.object_:
            return np.full(shape, b"", dtype=object)
        if dtype == np.bool_:
            return self._rng.integers(0, 2, size=shape).astype(np.bool_)
        if dtype.kind == "f" or dtype == ml_dtypes.bfloat16:
            sign = self._rng.choice([-1, 1], size=shape)
            top = 2**10 if dtype.itemsize < 4 else 2**20
            return (sign * self._rng.integers(1, top, size=shape)).astype(dtype)
        raw = self._rng.bytes(math.prod(shape) * dtype.itemsize)
        return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()


@dataclasses.dataclass(frozen=True)
class StateEntry:
    """One `state` entry of the config, as Triton prepares it at load time.

    Attributes:
        input_name: The model input Triton feeds the buffer to.
        output_name: The model output Triton takes the next buffer from.
        dtype: numpy type of the buffer.
        shape: Shape of a fresh buffer ([1] when batched + dims, -1 -> 1).
        initial: The initial value (zeros or the data file) shaped [1] (when
            batched) + the initial state's own dims; None without one.
        start_error: Core's error at every sequence start, if any (a string
            state file whose size is not a multiple of 4).
        scalar: Whether the state's dims are [] (released Triton gives such a
            state a buffer of no bytes, server issue 3901).
    """

    input_name: str
    output_name: str
    dtype: np.dtype
    shape: Tuple[int, ...]
    initial: Optional[np.ndarray]
    start_error: str = ""
    scalar: bool = False

    def fresh(self, garbage: Garbage, honor_initial_dims: bool = False) -> np.ndarray:
        """The buffer a slot gets at START: the initial state, or garbage.

        Released Triton shapes it `shape` whatever the initial state's dims,
        so it shows the initial value's first elements only;
        `honor_initial_dims` gives the initial value in its own dims.
        """
        if self.start_error:
            raise SequenceStateError(self.start_error)
        if self.initial is None:
            return garbage(self.shape, self.dtype)
        if honor_initial_dims or self.initial.shape == self.shape:
            return self.initial.copy()
        return self.initial.reshape(-1)[:math.prod(self.shape)].reshape(self.shape).copy()

    def fresh_elements(self, buffer: np.ndarray, empty_scalar: bool = False) -> int:
        """How many elements a fresh `buffer` holds: the whole initial value, whatever its shape.

        `empty_scalar`: released Triton's scalar state, which holds none
        (server issue 3901).
        """
        if empty_scalar and self.scalar:
            return 0
        if self.initial is None or self.dtype == np.object_:
            return buffer.size
        return self.initial.size


def _zeroed_strings(size: int, name: str, count: int, shape: Tuple[int, ...]) -> np.ndarray:
    """A string state of `size` bytes after core zeroes it (size a multiple of 4)."""
    elements = parse_bytes_tensor(bytes(size))
    if len(elements) != count:
        raise SimError(f"string state file {name} has {size} bytes: zeroed by Triton that is"
                       f" {len(elements)} empty strings, but the state has {count} elements;"
                       f" write {4 * count} zero bytes")
    return np.array(elements, dtype=object).reshape(shape)


def _read_data_file(path: pathlib.Path, dtype: np.dtype, shape: Tuple[int, ...]) -> np.ndarray:
    """An initial-state file: raw row-major little-endian values; strings as core zeroes them."""
    blob, count = path.read_bytes(), math.prod(shape)
    if dtype == np.object_:
        return _zeroed_strings(len(blob), path.name, count, shape)
    if len(blob) < count * dtype.itemsize:
        raise SimError(f"state file {path.name} has {len(blob)} bytes,"
                       f" needs {count * dtype.itemsize}")
    return np.frombuffer(blob[:count * dtype.itemsize], dtype=dtype).reshape(shape).copy()


def _initial_value(state, batch: Tuple[int, ...], model_dir: pathlib.Path):
    """The entry's initial_state as an array of batch + its own dims (None: it has none)."""
    if not state.initial_state:
        return None
    initial = state.initial_state[0]
    dtype = np.dtype(numpy_type(state.data_type))
    shape = batch + tuple(initial.dims)
    if len(initial.dims) != len(state.dims) or any(
            s not in (-1, d) for s, d in zip(state.dims, initial.dims, strict=True)):
        raise SimError(f"initial_state dims {list(initial.dims)} of '{state.input_name}'"
                       f" do not fit state dims {list(state.dims)}")
    if initial.zero_data:  # core allocates 4 zero bytes per string: empty strings
        return np.full(shape, b"", dtype=object) if dtype == np.object_ else np.zeros(
            shape, dtype)
    if not initial.data_file:
        raise SimError(f"initial_state of '{state.input_name}' sets neither zero_data"
                       " nor data_file")
    return _read_data_file(model_dir / "initial_state" / initial.data_file, dtype, shape)


def state_entries(config: mc.ModelConfig, model_dir: pathlib.Path) -> List[StateEntry]:
    """Every `state` entry of the config, in config order; names must be distinct."""
    states = list(config.sequence_batching.state)
    if not states:
        raise SimError("sequence_batching declares no state; these are implicit-state models")
    names = [n for s in states for n in (s.input_name, s.output_name)]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise SimError(f"state tensor names {repeated} are used by more than one state entry")
    batch = (1,) if config.max_batch_size > 0 else ()
    entries = []
    for state in states:
        shape = batch + tuple(1 if d == -1 else d for d in state.dims)
        error = _string_file_error(state, model_dir)
        dtype = np.dtype(numpy_type(state.data_type))
        entries.append(StateEntry(
            input_name=state.input_name, output_name=state.output_name, dtype=dtype,
            shape=shape, initial=None if error else _initial_value(state, batch, model_dir),
            start_error=error, scalar=not state.dims))
    return entries


def _string_file_error(state, model_dir: pathlib.Path) -> str:
    """Core's start-of-sequence error for a string state file of a bad size, else ""."""
    if mc.DataType.Name(state.data_type) != "TYPE_STRING" or not state.initial_state:
        return ""
    data_file = state.initial_state[0].data_file
    if not data_file:
        return ""
    size = (model_dir / "initial_state" / data_file).stat().st_size
    if size % 4 == 0:
        return ""
    return f"{NOT_MULTIPLE_OF_4} (state '{state.input_name}', {data_file}: {size} bytes)"


class TritonError(SimError):
    """An error Triton itself returns to the client for a request."""

    def __init__(self, message: str) -> None:
        super().__init__(message)


# What a backend builds from a state input whose buffers hold fewer elements
# than its shape (see collect_state): measured on tritonserver 2.51 with
# Triton's r24.10 CPU backends and the wheel's python backend.
SHORT_STATE = {
    "onnxruntime_onnx": "error", "onnxruntime": "error",
    "pytorch_libtorch": "unset", "pytorch": "unset",
    "tensorflow_savedmodel": "unset", "tensorflow": "unset",
    "python": "zero",
}


def collect_state(states: List[np.ndarray], held: List[int], short: str, garbage: Garbage,
                  batched: bool) -> np.ndarray:
    """One state input of an execution, collected as Triton's backends collect it.

    `states` are the rows' buffers (one row when not batched) and `held` how
    many elements each really holds. Core forms a batch from the client
    inputs' shapes only and attaches the implicit states afterwards, so the
    rows' states may differ in shape (a variable-shape state is [1, 1] at a
    sequence's first step, [1, width] later). The onnxruntime and pytorch
    backends take the first row's shape with the batch dimension set to the
    row count, and lay the rows' elements end to end (measured:
    verification/catalogue_checks.py RaggedStateBatchTest). More elements
    than that shape holds: it reads the first ones, so later rows see a
    neighbour's elements. Fewer (a ragged batch, or released Triton's
    scalar state, whose buffers hold none): `short` says what happens
    ("error": every request of the execution fails with ONNX Runtime's
    message; "unset": the missing elements are uninitialized memory,
    `garbage` here (measured pytorch: 0 on a quiet server, -222740433 under
    load; tensorflow: any value); "zero": zeros, what the python backend
    hands a model).
    """
    shape = ((len(states),) + states[0].shape[1:]) if batched else states[0].shape
    whole = all(count >= state.size for state, count in zip(states, held, strict=True))
    if whole and all(state.shape == states[0].shape for state in states):
        return np.concatenate(states) if batched else states[0]
    flat = np.concatenate([state.reshape(-1)[:count]
                           for state, count in zip(states, held, strict=True)])
    need = math.prod(shape)
    if flat.size < need:
        missing = (need - flat.size,)
        if short == "error":
            size = flat.dtype.itemsize
            raise TritonError(f"onnx runtime error 2: not enough space: expected"
                              f" {need * size}, got {flat.size * size}")
        if short == "unset":
            flat = np.concatenate([flat, garbage(missing, flat.dtype)])
        elif short == "zero":
            flat = np.concatenate([flat, np.zeros(missing, flat.dtype)])
        else:
            raise SimError(f"no measured behaviour for a state input of {flat.size} elements"
                           f" in shape {shape} on this backend")
    return flat[:need].reshape(shape)


def hand_back(entries, by_name_order: bool) -> Tuple[int, ...]:
    """For each state entry j (config order), the entry whose output becomes j's next input.

    Core (`SequenceStates::OutputState`, src/sequence_state.cc, r24.10 and
    main) keeps input and output states in two maps keyed by name and
    updates the input whose position among the sorted input names equals
    the output's position among the sorted output names: when the two
    orders differ the states are exchanged (server issue 8586). Without
    `by_name_order`, the config's own pairs.
    """
    if not by_name_order:
        return tuple(range(len(entries)))
    inputs = sorted(entry.input_name for entry in entries)
    outputs = sorted(entry.output_name for entry in entries)
    source = {}
    for k, entry in enumerate(entries):
        target = inputs[outputs.index(entry.output_name)]
        source[next(j for j, e in enumerate(entries) if e.input_name == target)] = k
    return tuple(source[j] for j in range(len(entries)))
