"""The model variant: one point of the backend x dtype x shape x batching matrix.

A `Variant` is what one Bazel action (or one step of the standalone CLI)
builds. It crosses the Starlark -> Python boundary as a JSON spec, decoded by
`Variant.from_spec`, which rejects missing, unknown and mistyped keys. This
module uses only the standard library: the matrix expansion that Bazel's
repository rule runs imports it with a bare interpreter.
"""

import dataclasses
import enum
import json
import re
from typing import Any, Mapping, Optional, Tuple

from generators import served_types
from generators.errors import SpecError, UnsupportedVariantError


class Backend(str, enum.Enum):
    """Model family; the value is the model-name prefix before `_nobatch`."""

    ONNX = "onnx"
    SAVEDMODEL = "savedmodel"
    PYTHON = "python"
    PLAN = "plan"
    LIBTORCH = "libtorch"


class DType(str, enum.Enum):
    """Model dtype, spelled as numpy names it (and as model names carry it).

    The first four are upstream's; `BOOL` is upstream's "bool" model, which
    carries INT32 data with bool controls. The others exist for the
    state-coverage repositories (docs/models.md, "Every state type"), where
    INPUT, OUTPUT and the state are of that Triton type: `BOOLEAN` is a real
    TYPE_BOOL state (numpy's `bool`, named apart from upstream's "bool"
    models) and `BFLOAT16` is TYPE_BF16, which numpy has no type for.
    """

    FLOAT32 = "float32"
    INT32 = "int32"
    OBJECT = "object"
    BOOL = "bool"
    BOOLEAN = "boolean"
    INT8 = "int8"
    INT16 = "int16"
    INT64 = "int64"
    UINT8 = "uint8"
    UINT16 = "uint16"
    UINT32 = "uint32"
    UINT64 = "uint64"
    FLOAT16 = "float16"
    BFLOAT16 = "bfloat16"
    FLOAT64 = "float64"


class InitialState(str, enum.Enum):
    """How Triton initialises INPUT_STATE at the start of a sequence."""

    NONE = "none"
    ZERO = "zero"
    FILE = "file"


class Strategy(str, enum.Enum):
    """Sequence-batcher scheduling strategy (`oldest` makes a dyna model)."""

    DIRECT = "direct"
    OLDEST = "oldest"


# What each backend can build. The matrix expansion and the validation below
# both read this table, so a combination is either generated or rejected,
# never silently half-supported.
# Upstream's four dtypes; every other DType is a state-coverage dtype.
UPSTREAM_DTYPES = frozenset({DType.FLOAT32, DType.INT32, DType.OBJECT, DType.BOOL})
STATE_COVERAGE_DTYPES = frozenset(DType) - UPSTREAM_DTYPES
# Plans stay numeric float32/int32: these machines have no TensorRT to
# measure any other state type on (docs/models.md, "Every state type").
BACKEND_DTYPES = {
    Backend.ONNX: frozenset(DType),
    Backend.SAVEDMODEL: frozenset(DType),
    Backend.PYTHON: frozenset(DType),
    Backend.PLAN: frozenset({DType.FLOAT32, DType.INT32}),
    Backend.LIBTORCH: frozenset(DType),
}
BACKEND_STRATEGIES = {backend: frozenset(Strategy) for backend in Backend}
# Triton's pytorch backend hands a string input to the model as a 1-D
# List[str]; a batched string model has 2-D inputs and never loads.
BATCHED_STRING_BACKENDS = frozenset({Backend.LIBTORCH})
# Backends whose tensor names carry a `__<index>` position suffix, which the
# generator appends (generators/model_config.py `tensor_names`): state names
# given to it must not hold `__` themselves.
POSITIONAL_NAME_BACKENDS = frozenset({Backend.LIBTORCH})
# A TorchScript forward() has a fixed arity; the libtorch builder has one
# entry module per state-pair count up to this.
LIBTORCH_MAX_STATE_PAIRS = 4
# Backends whose models can only be built on a machine with a GPU.
GPU_ONLY_BACKENDS = frozenset({Backend.PLAN})
DYNA_DTYPES = frozenset({DType.INT32})
MAX_BATCH_CHOICES = (0, 8)
STATE_INPUT = "INPUT_STATE"
STATE_OUTPUT = "OUTPUT_STATE"
# Tensor names a state pair may not take: the data tensors and the controls.
RESERVED_TENSOR_NAMES = frozenset({"INPUT", "OUTPUT", "START", "END", "READY", "CORRID"})
_TENSOR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Several state pairs are defined for these dtypes only (docs/models.md, "Several states").
MULTI_STATE_DTYPES = frozenset({DType.FLOAT32, DType.INT32})
# Concrete initial-state dims under a variable state are defined for these
# dtypes only (docs/models.md, "Initial-state dims under a variable state").
INITIAL_STATE_DIMS_DTYPES = frozenset({DType.FLOAT32, DType.INT32})
# A state of another dtype than INPUT (`state_dtype`): the pairs defined,
# each a state wider than its inputs (docs/models.md, "Every state type").
WIDER_STATE_DTYPES = {DType.INT32: DType.INT64, DType.FLOAT16: DType.FLOAT32}
# A state of other dims than INPUT (`state_dims`), for a single-state
# fixed-shape [1] model of these dtypes: (2,) keeps the running sum and the
# step count, () is a scalar state (docs/models.md, "States shaped unlike INPUT").
STATE_DIMS_CHOICES = ((2,), ())
STATE_DIMS_DTYPES = frozenset({DType.FLOAT32, DType.INT32})
# `use_same_buffer_for_input_output` variants: single-state numeric models.
SAME_BUFFER_DTYPES = frozenset({DType.FLOAT32, DType.INT32})


@dataclasses.dataclass(frozen=True)
class StatePair:
    """One implicit state: Triton feeds `input`, the model returns `output`."""

    input: str
    output: str

    @property
    def data_file(self) -> str:
        """File of this state's file initial state (`input_state_data` by default)."""
        return f"{self.input.lower()}_data"


DEFAULT_STATE_PAIRS = (StatePair(STATE_INPUT, STATE_OUTPUT),)


def _batched_strings_refused(backend: Backend, dtype: DType, max_batch: int) -> bool:
    """Whether this is a batched string model of a backend that cannot serve one."""
    return backend in BATCHED_STRING_BACKENDS and dtype is DType.OBJECT and max_batch > 0


def backend_builds(backend: Backend, dtype: DType, max_batch: int) -> bool:
    """Whether `backend` builds `dtype` models with this max_batch (the matrix skips others).

    A state-coverage dtype that Triton's backend was measured not to serve
    (generators/served_types.py `EXCLUSIONS`) is not built either.
    """
    return (dtype in BACKEND_DTYPES[backend]
            and not _batched_strings_refused(backend, dtype, max_batch)
            and served_types.exclusion(backend.value, dtype.value) is None)


def _choices(enum_type) -> str:
    return ", ".join(member.value for member in enum_type)


def _parse_enum(enum_type, field: str, value: Any):
    try:
        return enum_type(value)
    except ValueError:
        raise SpecError(
            f"field '{field}' has value {value!r}; valid values are: {_choices(enum_type)}"
        ) from None


def _parse_state_pairs(value: Any) -> Tuple[StatePair, ...]:
    if value is None:
        return DEFAULT_STATE_PAIRS
    if not isinstance(value, list) or not all(
        isinstance(p, (list, tuple)) and len(p) == 2 and all(isinstance(n, str) for n in p)
        for p in value
    ):
        raise SpecError(
            f"field 'state_pairs' must be a list of [input_name, output_name] pairs, got {value!r}"
        )
    return tuple(StatePair(*pair) for pair in value)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Variant:
    """One implicit-state model to generate; validated on construction."""

    backend: Backend
    dtype: DType
    shape: Tuple[int, ...]
    max_batch: int
    initial_state: InitialState = InitialState.NONE
    strategy: Strategy = Strategy.DIRECT
    state_pairs: Tuple[StatePair, ...] = DEFAULT_STATE_PAIRS
    initial_state_dims: Tuple[int, ...] = ()
    state_dtype: Optional[DType] = None  # the state's (and OUTPUT's) dtype when not `dtype`
    state_dims: Optional[Tuple[int, ...]] = None  # the state's dims when not `shape`
    same_buffer: bool = False  # use_same_buffer_for_input_output

    def __post_init__(self) -> None:
        """Reject combinations the contract excludes, naming the rule."""
        self._check_state_pairs()
        self._check_initial_state_dims()
        self._check_state_layout()
        if not self.shape or any(d != -1 and d < 1 for d in self.shape):
            raise UnsupportedVariantError(
                f"shape {list(self.shape)} is invalid; each dim must be >= 1 or -1 (variable)"
            )
        if self.max_batch < 0:
            raise UnsupportedVariantError(
                f"max_batch {self.max_batch} is negative; use 0 (no batching) or a positive size"
            )
        if self.dtype not in BACKEND_DTYPES[self.backend]:
            allowed = ", ".join(sorted(d.value for d in BACKEND_DTYPES[self.backend]))
            raise UnsupportedVariantError(
                f"backend '{self.backend.value}' does not support dtype '{self.dtype.value}';"
                f" choose one of: {allowed}"
            )
        for dtype in {self.dtype, self.state_type}:
            excluded = served_types.exclusion(self.backend.value, dtype.value)
            if excluded is not None:
                raise UnsupportedVariantError(
                    f"backend '{self.backend.value}' cannot serve dtype '{dtype.value}':"
                    f" {excluded} (generators/served_types.py); choose another dtype or backend")
        if self.strategy not in BACKEND_STRATEGIES[self.backend]:
            raise UnsupportedVariantError(
                f"backend '{self.backend.value}' has no dyna ('{self.strategy.value}' strategy)"
                " models"
            )
        if _batched_strings_refused(self.backend, self.dtype, self.max_batch):
            raise UnsupportedVariantError(
                f"backend '{self.backend.value}' cannot serve batched string models (max_batch"
                f" {self.max_batch}): Triton's pytorch backend passes strings as a 1-D"
                " List[str], so the model would never load; use max_batch 0 for dtype 'object'"
            )
        if self.dyna and self.dtype not in DYNA_DTYPES:
            raise UnsupportedVariantError(
                f"dyna models are int32 only, got dtype '{self.dtype.value}'"
            )
        if self.dyna and self.initial_state is not InitialState.NONE:
            raise UnsupportedVariantError(
                "dyna models have no initial state; use initial_state 'none'"
            )

    def _check_state_pairs(self) -> None:
        if not self.state_pairs:
            raise UnsupportedVariantError("state_pairs is empty; a model needs at least one pair")
        names = [name for pair in self.state_pairs for name in (pair.input, pair.output)]
        for name in names:
            if not isinstance(name, str) or not _TENSOR_NAME.match(name):
                raise UnsupportedVariantError(
                    f"state tensor name {name!r} is invalid; use letters, digits and '_',"
                    " not starting with a digit"
                )
            if self.backend in POSITIONAL_NAME_BACKENDS and "__" in name:
                raise UnsupportedVariantError(
                    f"state tensor name '{name}' holds '__'; backend '{self.backend.value}'"
                    " appends the `__<index>` position itself (INPUT_STATE_1 becomes"
                    " INPUT_STATE_1__4), so give the name without it"
                )
            if name in RESERVED_TENSOR_NAMES:
                raise UnsupportedVariantError(
                    f"state tensor name '{name}' clashes with a data or control tensor;"
                    f" avoid {sorted(RESERVED_TENSOR_NAMES)}"
                )
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise UnsupportedVariantError(
                f"state tensor names {repeated} are used twice; every input and output"
                " name of state_pairs must be distinct"
            )
        if self.multi_state and self.dtype not in MULTI_STATE_DTYPES:
            raise UnsupportedVariantError(
                f"custom state_pairs are defined for float32 and int32 only, got dtype"
                f" '{self.dtype.value}'; use the default single pair"
            )
        if self.backend is Backend.LIBTORCH and len(self.state_pairs) > LIBTORCH_MAX_STATE_PAIRS:
            raise UnsupportedVariantError(
                f"libtorch models take at most {LIBTORCH_MAX_STATE_PAIRS} state pairs, got"
                f" {len(self.state_pairs)}; use fewer pairs or another backend"
            )
        if self.multi_state and self.dyna:
            raise UnsupportedVariantError(
                "dyna models keep the default single state pair; drop state_pairs"
            )

    def _check_initial_state_dims(self) -> None:
        dims = self.initial_state_dims
        if not dims:
            return
        if self.initial_state is not InitialState.FILE:
            raise UnsupportedVariantError(
                f"initial_state_dims {list(dims)} need initial_state 'file' (got"
                f" '{self.initial_state.value}'): only a data file can hold distinct values")
        if self.dtype not in INITIAL_STATE_DIMS_DTYPES or self.multi_state or self.dyna:
            raise UnsupportedVariantError(
                f"initial_state_dims are defined for single-state direct float32 and int32"
                f" models only, got dtype '{self.dtype.value}', {len(self.state_pairs)} state"
                f" pair(s), strategy '{self.strategy.value}'")
        fits = len(dims) == len(self.shape) and all(
            isinstance(d, int) and d >= 1 and s in (-1, d)
            for d, s in zip(dims, self.shape, strict=False))
        if not fits or not self.variable:
            raise UnsupportedVariantError(
                f"initial_state_dims {list(dims)} do not fit shape {list(self.shape)}: give one"
                " dim >= 1 per state dim, differing from it only where it is -1, and use them"
                " with a variable shape (a fixed shape already fixes the initial dims)")

    def _check_state_layout(self) -> None:
        """The state-coverage options: their dtypes, and one at a time."""
        coverage = self.dtype in STATE_COVERAGE_DTYPES
        options = [name for name, used in (
            ("state_dtype", self.state_dtype is not None),
            ("state_dims", self.state_dims is not None),
            ("same_buffer", self.same_buffer),
            ("state_pairs", self.multi_state),
            ("initial_state_dims", bool(self.initial_state_dims)),
            ("strategy 'oldest'", self.dyna)) if used]
        if len(options) > 1:
            raise UnsupportedVariantError(
                f"options {options} are combined; each state-coverage model varies one thing"
                " from a single-state direct model, so give at most one of them")
        if coverage and options and options != ["state_dtype"]:
            raise UnsupportedVariantError(
                f"dtype '{self.dtype.value}' is a state-coverage dtype, defined for the default"
                f" single-state direct model only; drop {options}")
        if self.state_dtype is not None and WIDER_STATE_DTYPES.get(self.dtype) != self.state_dtype:
            pairs = ", ".join(f"{k.value} -> {v.value}" for k, v in WIDER_STATE_DTYPES.items())
            raise UnsupportedVariantError(
                f"state_dtype '{self.state_dtype.value}' with dtype '{self.dtype.value}' is not"
                f" defined; the wider states are {pairs}")
        if self.state_dims is not None:
            if self.state_dims not in STATE_DIMS_CHOICES or self.shape != (1,) \
                    or self.dtype not in STATE_DIMS_DTYPES \
                    or self.initial_state is InitialState.FILE:
                raise UnsupportedVariantError(
                    f"state_dims {list(self.state_dims)} with shape {list(self.shape)}, dtype"
                    f" '{self.dtype.value}' and initial_state '{self.initial_state.value}' is not"
                    " defined; use state_dims [2] or [] with shape [1], dtype float32 or int32"
                    " and initial_state 'none' or 'zero'")
        if self.same_buffer and self.dtype not in SAME_BUFFER_DTYPES:
            raise UnsupportedVariantError(
                f"same_buffer is defined for float32 and int32 only, got dtype '{self.dtype.value}'")

    @property
    def state_type(self) -> DType:
        """The state's dtype (OUTPUT's too): `state_dtype`, else `dtype`."""
        return self.state_dtype or self.dtype

    @property
    def state_layout(self) -> Tuple[int, ...]:
        """The state's configured dims: `state_dims`, else INPUT's `shape`."""
        return self.shape if self.state_dims is None else self.state_dims

    @property
    def multi_state(self) -> bool:
        """Whether the state pairs differ from the default single INPUT_STATE pair."""
        return self.state_pairs != DEFAULT_STATE_PAIRS

    @property
    def crossed_state_order(self) -> bool:
        """Whether the output state names sort in another order than the input state names.

        Released Triton core pairs an output state with the input state at
        its position in sorted name order (server issue 8586), so such a
        model's states are exchanged between requests on a backend that
        hands state back (docs/models.md, "Several states").
        """
        inputs = sorted(pair.input for pair in self.state_pairs)
        outputs = sorted(pair.output for pair in self.state_pairs)
        return any(inputs.index(pair.input) != outputs.index(pair.output)
                   for pair in self.state_pairs)

    @property
    def dyna(self) -> bool:
        """Whether this is an oldest-strategy ("dyna") model."""
        return self.strategy is Strategy.OLDEST

    @property
    def variable(self) -> bool:
        """Whether any data dim is variable (-1)."""
        return -1 in self.shape

    @property
    def gpu_only(self) -> bool:
        """Whether building this model needs a GPU (TensorRT plans)."""
        return self.backend in GPU_ONLY_BACKENDS

    @property
    def prefix(self) -> str:
        """Model-name prefix: the backend, plus `_nobatch` when max_batch is 0."""
        return self.backend.value + ("_nobatch" if self.max_batch == 0 else "")

    @property
    def name(self) -> str:
        """Model name as Triton's QA clients build it (test_util.py)."""
        kind = "dyna_sequence" if self.dyna else "sequence"
        suffix = f"_states{len(self.state_pairs)}" if self.multi_state else ""
        if self.state_dtype is not None:
            suffix = f"_state_{self.state_dtype.value}"
        elif self.state_dims is not None:
            suffix = "_state_scalar" if not self.state_dims else "_state_sum_count"
        return f"{self.prefix}_{kind}_{self.dtype.value}{suffix}"

    @property
    def state_shape(self) -> Tuple[int, ...]:
        """Shape Triton gives a fresh state (without batch): -1 becomes 1."""
        return tuple(1 if d == -1 else d for d in self.state_layout)

    @property
    def initial_dims(self) -> Tuple[int, ...]:
        """The initial state's dims: `initial_state_dims` when given, else `state_shape`.

        Released Triton ignores concrete dims under a variable state and starts
        the state as `state_shape`, holding the file's first values (server
        issue 6538, docs/models.md "Initial-state dims under a variable state").
        """
        return self.initial_state_dims or self.state_shape

    def to_spec(self) -> dict:
        """The JSON-ready spec that `from_spec` reads back.

        `state_pairs`, `initial_state_dims`, `state_dtype`, `state_dims` and
        `same_buffer` appear only when they differ from the defaults, so the
        specs (and the models built from them) of variants without them never
        change.
        """
        spec = {
            "backend": self.backend.value,
            "dtype": self.dtype.value,
            "shape": list(self.shape),
            "max_batch": self.max_batch,
            "initial_state": self.initial_state.value,
            "strategy": self.strategy.value,
        }
        if self.multi_state:
            spec["state_pairs"] = [[pair.input, pair.output] for pair in self.state_pairs]
        if self.initial_state_dims:
            spec["initial_state_dims"] = list(self.initial_state_dims)
        if self.state_dtype is not None:
            spec["state_dtype"] = self.state_dtype.value
        if self.state_dims is not None:
            spec["state_dims"] = list(self.state_dims)
        if self.same_buffer:
            spec["same_buffer"] = True
        return spec

    def to_json(self) -> str:
        """Canonical JSON text of the spec (sorted keys, no spaces)."""
        return json.dumps(self.to_spec(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> "Variant":
        """Decode a spec mapping, rejecting missing, unknown and mistyped keys."""
        if not isinstance(spec, Mapping):
            raise SpecError(f"expected a JSON object, got {type(spec).__name__}")
        fields = {f.name for f in dataclasses.fields(cls)}
        required = {"backend", "dtype", "shape", "max_batch"}
        unknown = sorted(set(spec) - fields)
        if unknown:
            raise SpecError(f"unknown keys {unknown}; valid keys are {sorted(fields)}")
        missing = sorted(required - set(spec))
        if missing:
            raise SpecError(f"missing keys {missing}; every spec needs {sorted(required)}")
        shape = spec["shape"]
        if not isinstance(shape, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) for d in shape
        ):
            raise SpecError(f"field 'shape' must be a list of ints, got {shape!r}")
        max_batch = spec["max_batch"]
        if not isinstance(max_batch, int) or isinstance(max_batch, bool):
            raise SpecError(f"field 'max_batch' must be an int, got {max_batch!r}")
        initial_dims = spec.get("initial_state_dims", [])
        if not isinstance(initial_dims, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) for d in initial_dims
        ):
            raise SpecError(f"field 'initial_state_dims' must be a list of ints, got {initial_dims!r}")
        state_dims = spec.get("state_dims")
        if state_dims is not None and (not isinstance(state_dims, list) or not all(
                isinstance(d, int) and not isinstance(d, bool) for d in state_dims)):
            raise SpecError(f"field 'state_dims' must be a list of ints, got {state_dims!r}")
        same_buffer = spec.get("same_buffer", False)
        if not isinstance(same_buffer, bool):
            raise SpecError(f"field 'same_buffer' must be true or false, got {same_buffer!r}")
        state_dtype = spec.get("state_dtype")
        return cls(
            state_dtype=None if state_dtype is None else _parse_enum(
                DType, "state_dtype", state_dtype),
            state_dims=None if state_dims is None else tuple(state_dims),
            same_buffer=same_buffer,
            initial_state_dims=tuple(initial_dims),
            state_pairs=_parse_state_pairs(spec.get("state_pairs")),
            backend=_parse_enum(Backend, "backend", spec["backend"]),
            dtype=_parse_enum(DType, "dtype", spec["dtype"]),
            shape=tuple(shape),
            max_batch=max_batch,
            initial_state=_parse_enum(
                InitialState, "initial_state", spec.get("initial_state", "none")
            ),
            strategy=_parse_enum(Strategy, "strategy", spec.get("strategy", "direct")),
        )

    @classmethod
    def from_json(cls, text: str) -> "Variant":
        """Decode a JSON spec string."""
        try:
            spec = json.loads(text)
        except json.JSONDecodeError as err:
            raise SpecError(f"not valid JSON ({err}): {text!r}") from None
        return cls.from_spec(spec)
