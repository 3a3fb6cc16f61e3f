"""libtorch builder: the implicit-state TorchScript module of one variant as `model.pt`.

Triton's pytorch backend calls `forward` positionally, each config tensor at
the position its `__<index>` suffix names (generators/model_config.py
`tensor_names`): forward(INPUT__0, INPUT_STATE__1, START__2, READY__3,
<state 1>__4, ...) returning the tuple (OUTPUT__0, OUTPUT_STATE__1,
<state 1>__2, ...). Upstream's arithmetic lives in two scripted modules
written as ordinary Python below (`NumericStates`, `StringStates`), wrapped in
one small module per arity (`_Numeric1` .. `_Numeric4`, `_String1`; `_Dyna1`
for the oldest strategy's six inputs).

Arithmetic (CONTRACT.md section 3), pair k with state S_k:
- numeric/bool: new_k = (k + 1) * INPUT + S_k; without an initial state a
  select, where(READY and not START, new_k, (k + 1) * INPUT), so an
  uninitialised (possibly NaN) float state at START cannot leak. Broadcasting
  lets a first-step state of width 1 meet an INPUT of any width.
- strings (max_batch 0 only; the backend passes a 1-D List[str]): each
  element parsed as a decimal integer (empty = 0, negatives allowed), the
  output the decimal text of the sum, as upstream's QA clients expect for
  libtorch (they compare int(output) with the running sum).
OUTPUT is new_0 for one pair; with several, sum over k of (k + 1) * new_k
(`WeightedStates`; docs/models.md, "Several states").

The state-coverage models (CONTRACT.md section 3, "States beyond upstream's")
have modules of their own, so upstream's models keep their bytes:
- `TypedState`: a state of any dtype Triton's pytorch backend serves, INPUT
  cast to the state's dtype (the wider int32 -> int64 and float16 -> float32
  states) and summed in it; a BOOL state keeps the running XOR. Gated as
  above without an initial state. Upstream's float32, int32 and bool
  (INT32 data) models keep `NumericStates`, also in the new repositories.
- `SumCountState`: state [sum, count] (dims [2]); OUTPUT = sum + 100 * count.
- `ScalarState`: a state of dims [] (batched: [B]) holding the running sum.
- dyna (`_Dyna1` around `NumericStates`): forward also takes END__4 and
  CORRID__5, unused (Triton's backend keeps the state).

`torch.jit.save` is not reproducible by itself; `deterministic_archive`
rewrites its zip so the bytes are a function of the module alone.
"""

import hashlib
import io
import pathlib
import zipfile
from typing import List, Tuple

import torch
from torch import Tensor

from generators.build_options import BuildOptions
from generators.variant import (
    LIBTORCH_MAX_STATE_PAIRS,
    UPSTREAM_DTYPES,
    DType,
    InitialState,
    Variant,
)

# Name of the archive's top folder; torch.jit.save derives it from the file
# name, which differs between a Bazel sandbox and the CLI.
ARCHIVE_NAME = "model"
# DOS date-time of every entry: 1980-01-01 00:00:00, the zip format's epoch.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
# libtorch's reader (caffe2 serialize/inline_container.cc) maps each record's
# payload at a 64-byte aligned offset; torch's writer pads with an "FB" extra
# field, so the rewrite does the same.
_ALIGNMENT = 64


class NumericStates(torch.nn.Module):
    """The numeric/bool arithmetic over any number of state pairs."""

    def __init__(self, gated: bool) -> None:
        """`gated`: select INPUT at START/padding (no initial state) instead of adding S."""
        super().__init__()
        self.gated = gated

    def forward(self, data: Tensor, states: List[Tensor], start: Tensor,
                ready: Tensor) -> List[Tensor]:
        """[OUTPUT, new_0, new_1, ...] for INPUT `data` and the states."""
        carry = ready.to(torch.bool) & ~start.to(torch.bool)
        results: List[Tensor] = []
        for k, state in enumerate(states):
            scaled = data if k == 0 else data * (k + 1)
            total = scaled + state
            if self.gated:
                total = torch.where(carry, total, scaled)
            results.append(total)
        output = results[0]
        for result in results[1:]:
            output = output + result
        return [output] + results


class WeightedStates(torch.nn.Module):
    """Several pairs: OUTPUT = sum over k of (k + 1) * new_k, so the pairs are told apart.

    Wraps `NumericStates` (whose plain sum single-pair models keep, byte for byte).
    """

    def __init__(self, core: NumericStates) -> None:
        """Wrap the per-pair arithmetic."""
        super().__init__()
        self.core = core

    def forward(self, data: Tensor, states: List[Tensor], start: Tensor,
                ready: Tensor) -> List[Tensor]:
        """[OUTPUT, new_0, new_1, ...]: element k of the core's answer is new_{k-1}."""
        news = self.core(data, states, start, ready)[1:]
        output = news[0]
        for k in range(1, len(news)):
            output = output + news[k] * (k + 1)
        return [output] + news


def _parse(text: str) -> int:
    """A decimal string as an int; the empty string (a fresh string state) is 0."""
    if len(text) == 0:
        return 0
    return int(text)


class StringStates(torch.nn.Module):
    """The string arithmetic (one List[str] per tensor, 1-D, as Triton passes it)."""

    def __init__(self, gated: bool) -> None:
        """`gated`: ignore the state at START and on padding (no initial state)."""
        super().__init__()
        self.gated = gated

    def forward(self, data: List[str], states: List[List[str]], start: Tensor,
                ready: Tensor) -> List[List[str]]:
        """[OUTPUT, new_0, ...] as decimal strings; a 1-element state broadcasts."""
        carry = bool(ready.reshape(-1)[0] != 0) and not bool(start.reshape(-1)[0] != 0)
        values = [_parse(x) for x in data]
        output = [0 for _ in values]
        results: List[List[str]] = []
        for k, state in enumerate(states):
            new: List[str] = []
            for i, value in enumerate(values):
                total = (k + 1) * value
                if carry or not self.gated:
                    total += _parse(state[i] if len(state) == len(values) else state[0])
                output[i] += total
                new.append(str(total))
            results.append(new)
        return [[str(x) for x in output]] + results


# Triton calls forward() with one argument per config tensor, so the saved
# module's forward has the variant's exact arity. One small class per arity
# (not text compiled at run time): each scripts to the same TorchScript type
# in every process, so no `___torch_mangle_<n>` name, which counts
# process-wide, can reach the archive.
class _Numeric1(torch.nn.Module):
    """forward(INPUT__0, INPUT_STATE__1, START__2, READY__3) for one state pair."""

    def __init__(self, core: torch.nn.Module) -> None:
        """Wrap the scripted arithmetic (NumericStates; WeightedStates for several pairs)."""
        super().__init__()
        self.core = core

    def forward(self, data: Tensor, state: Tensor, start: Tensor,
                ready: Tensor) -> Tuple[Tensor, Tensor]:
        """(OUTPUT__0, OUTPUT_STATE__1)."""
        r = self.core(data, [state], start, ready)
        return r[0], r[1]


class _Numeric2(_Numeric1):
    """Two state pairs: the second state input is argument 4, its output element 2."""

    def forward(self, data: Tensor, state: Tensor, start: Tensor, ready: Tensor,
                state_1: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """(OUTPUT__0, OUTPUT_STATE__1, <state 1>__2)."""
        r = self.core(data, [state, state_1], start, ready)
        return r[0], r[1], r[2]


class _Numeric3(_Numeric1):
    """Three state pairs (arguments 4 and 5, elements 2 and 3)."""

    def forward(self, data: Tensor, state: Tensor, start: Tensor, ready: Tensor,
                state_1: Tensor, state_2: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """(OUTPUT__0, OUTPUT_STATE__1, <state 1>__2, <state 2>__3)."""
        r = self.core(data, [state, state_1, state_2], start, ready)
        return r[0], r[1], r[2], r[3]


class _Numeric4(_Numeric1):
    """Four state pairs (arguments 4 to 6, elements 2 to 4)."""

    def forward(self, data: Tensor, state: Tensor, start: Tensor, ready: Tensor,
                state_1: Tensor, state_2: Tensor,
                state_3: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """(OUTPUT__0, OUTPUT_STATE__1, <state 1>__2, <state 2>__3, <state 3>__4)."""
        r = self.core(data, [state, state_1, state_2, state_3], start, ready)
        return r[0], r[1], r[2], r[3], r[4]


class _String1(torch.nn.Module):
    """forward(INPUT__0, INPUT_STATE__1, START__2, READY__3) on List[str] data."""

    def __init__(self, core: StringStates) -> None:
        """Wrap the scripted arithmetic."""
        super().__init__()
        self.core = core

    def forward(self, data: List[str], state: List[str], start: Tensor,
                ready: Tensor) -> Tuple[List[str], List[str]]:
        """(OUTPUT__0, OUTPUT_STATE__1)."""
        r = self.core(data, [state], start, ready)
        return r[0], r[1]


class _Dyna1(_Numeric1):
    """Oldest strategy: forward also takes END__4 and CORRID__5, which the sum ignores."""

    def forward(self, data: Tensor, state: Tensor, start: Tensor, ready: Tensor,
                end: Tensor, corrid: Tensor) -> Tuple[Tensor, Tensor]:
        """(OUTPUT__0, OUTPUT_STATE__1): X + S * [READY and not START]."""
        r = self.core(data, [state], start, ready)
        return r[0], r[1]


_NUMERIC_ENTRIES = (_Numeric1, _Numeric2, _Numeric3, _Numeric4)
assert len(_NUMERIC_ENTRIES) == LIBTORCH_MAX_STATE_PAIRS


class TypedState(torch.nn.Module):
    """forward(INPUT__0, INPUT_STATE__1, START__2, READY__3) for a state of any served dtype.

    INPUT is cast to the state's dtype (a no-op unless the state is wider) and
    summed with the state in it, or XOR-ed for a BOOL state, so OUTPUT and
    OUTPUT_STATE have exactly the configured dtype, which the backend checks.
    torch has CPU kernels for every state type the pytorch backend serves.
    """

    def __init__(self, gated: bool, parity: bool, state_type: torch.dtype) -> None:
        """`gated`: INPUT alone at START/padding; `parity`: XOR instead of a sum."""
        super().__init__()
        self.gated = gated
        self.parity = parity
        self.state_type = state_type

    def forward(self, data: Tensor, state: Tensor, start: Tensor,
                ready: Tensor) -> Tuple[Tensor, Tensor]:
        """(OUTPUT__0, OUTPUT_STATE__1), both the new state."""
        value = data.to(self.state_type)
        if self.parity:
            total = torch.logical_xor(value, state)
        else:
            total = value + state
        if self.gated:
            carry = ready.to(torch.bool) & ~start.to(torch.bool)
            total = torch.where(carry, total, value)
        return total, total


class SumCountState(torch.nn.Module):
    """A state of dims [2] (batched [B, 2]): [running sum, step count].

    new state = [S[0] + INPUT, S[1] + 1]; OUTPUT (dims [1]) = new sum + 100 * new
    count (INPUT 1, 2, 3, 4 -> 101, 203, 306, 410). Without an initial state a
    START or padding step starts from [INPUT, 1].
    """

    def __init__(self, gated: bool) -> None:
        """`gated`: ignore the state at START/padding (no initial state)."""
        super().__init__()
        self.gated = gated

    def forward(self, data: Tensor, state: Tensor, start: Tensor,
                ready: Tensor) -> Tuple[Tensor, Tensor]:
        """(OUTPUT__0, OUTPUT_STATE__1)."""
        total = state.narrow(-1, 0, 1) + data
        count = state.narrow(-1, 1, 1) + 1
        if self.gated:
            carry = ready.to(torch.bool) & ~start.to(torch.bool)
            total = torch.where(carry, total, data)
            count = torch.where(carry, count, torch.ones_like(count))
        return total + count * 100, torch.cat([total, count], -1)


class ScalarState(torch.nn.Module):
    """A state of dims [] (batched: shape [B]) holding the running sum.

    OUTPUT = INPUT + S (S reshaped to INPUT's shape, [B, 1] or [1]); the new
    state is that sum reshaped back to the state's shape.
    """

    def __init__(self, gated: bool) -> None:
        """`gated`: INPUT alone at START/padding (no initial state)."""
        super().__init__()
        self.gated = gated

    def forward(self, data: Tensor, state: Tensor, start: Tensor,
                ready: Tensor) -> Tuple[Tensor, Tensor]:
        """(OUTPUT__0, OUTPUT_STATE__1)."""
        total = data + state.reshape(data.shape)
        if self.gated:
            carry = ready.to(torch.bool) & ~start.to(torch.bool)
            total = torch.where(carry, total, data)
        return total, total.reshape(state.shape)


# The torch dtype of each state type `TypedState` keeps: the types Triton's
# pytorch backend serves (it refuses TYPE_UINT16, TYPE_UINT32, TYPE_UINT64 and
# TYPE_BF16 at load, generators/served_types.py).
_TORCH_TYPES = {
    DType.BOOLEAN: torch.bool,
    DType.INT8: torch.int8,
    DType.INT16: torch.int16,
    DType.INT32: torch.int32,
    DType.INT64: torch.int64,
    DType.UINT8: torch.uint8,
    DType.FLOAT16: torch.float16,
    DType.FLOAT32: torch.float32,
    DType.FLOAT64: torch.float64,
}


def _module(variant: Variant) -> torch.nn.Module:
    """The unscripted module of a variant (see the module docstring for which)."""
    gated = variant.initial_state is InitialState.NONE
    if variant.dtype is DType.OBJECT:
        return _String1(StringStates(gated))
    if variant.state_dims == (2,):
        return SumCountState(gated)
    if variant.state_dims == ():
        return ScalarState(gated)
    if variant.dtype not in UPSTREAM_DTYPES or variant.state_dtype is not None:
        state_type = variant.state_type
        return TypedState(gated, state_type is DType.BOOLEAN, _TORCH_TYPES[state_type])
    if variant.dyna:
        return _Dyna1(NumericStates(gated))
    entry = _NUMERIC_ENTRIES[len(variant.state_pairs) - 1]
    core = NumericStates(gated)
    return entry(core if entry is _Numeric1 else WeightedStates(core))


def scripted_model(variant: Variant) -> torch.jit.ScriptModule:
    """The variant's module, scripted: positional forward around the arithmetic."""
    return torch.jit.script(_module(variant))


def _stored(name: str, data: bytes) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
    info.compress_type = zipfile.ZIP_STORED
    info.create_system = 0
    info.external_attr = 0
    return info


def deterministic_archive(saved: bytes) -> bytes:
    """`torch.jit.save` output rewritten so its bytes depend on the module only.

    What varies run to run: the top folder (from the file name), the random
    `.data/serialization_id`, and the source paths in the `*.debug_pkl`
    records (optional debug info, left out). The rewrite keeps torch's record
    order, stores every record uncompressed at a 64-byte aligned offset, fixes
    the folder name and timestamps, and sets the serialization id to the
    sha256 of every other record's name and bytes.
    """
    records = []
    with zipfile.ZipFile(io.BytesIO(saved)) as source:
        for info in source.infolist():
            relative = info.filename.split("/", 1)[1]
            if relative.endswith(".debug_pkl"):
                continue
            records.append((f"{ARCHIVE_NAME}/{relative}", source.read(info)))
    digest = hashlib.sha256()
    for name, data in records:
        if not name.endswith("/.data/serialization_id"):
            digest.update(name.encode() + b"\0" + len(data).to_bytes(8, "little") + data)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for name, data in records:
            if name.endswith("/.data/serialization_id"):
                # torch writes 40 decimal digits; so does the rewrite.
                data = f"{int(digest.hexdigest(), 16) % 10**40:040d}".encode()
            info = _stored(name, data)
            header = 30 + len(name.encode())
            pad = (-(out.tell() + header + 4)) % _ALIGNMENT
            info.extra = b"FB" + pad.to_bytes(2, "little") + b"Z" * pad
            target.writestr(info, data)
    return out.getvalue()


def build_model(variant: Variant) -> bytes:
    """The deterministic TorchScript archive of a variant."""
    saved = io.BytesIO()
    torch.jit.save(scripted_model(variant), saved)
    return deterministic_archive(saved.getvalue())


def write_model(variant: Variant, options: BuildOptions, version_dir: pathlib.Path) -> None:
    """Write `model.pt` into the version directory (`options` has nothing for libtorch)."""
    del options
    (version_dir / "model.pt").write_bytes(build_model(variant))
