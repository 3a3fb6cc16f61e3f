"""Python API with the function names of upstream's generator, over the variant core.

Users who import `qa/common/gen_qa_implicit_models.py` instead of running it
call `create_onnx_modelfile`, `create_modelconfig`, `create_models` and
friends. Here each of them turns its arguments into a `Variant` and hands it
to the same builder and `ModelConfig` code the Bazel build uses, so the
files are byte-identical to the Bazel-built models. Model files are built in
a staging directory inside `models_dir` and renamed into place, so a failed
build (no TensorRT, a bad argument) leaves nothing behind. Builders that set
`FORK_PER_MODEL` (TensorFlow) build in a forked child, as the Bazel worker does.
"""

import contextlib
import enum
import numbers
import os
import pathlib
import shutil
import tempfile
from typing import Any, Iterator, List, Optional, Sequence, Union

import numpy as np

from generators import fork_child
from generators.backends import builder_for
from generators.build_options import (
    DEFAULT_ONNX_IR_VERSION,
    DEFAULT_ONNX_OPSET,
    MODEL_VERSION,
    BuildOptions,
)
from generators.dtypes import family_info
from generators.errors import SpecError
from generators.model_config import build_config, config_text, initial_state_files
from generators.variant import (
    Backend,
    DType,
    InitialState,
    StatePair,
    Strategy,
    Variant,
)
from generators.writer import check_output_dir

PathArg = Union[str, os.PathLike]
StatePairsArg = Optional[Sequence[Union[StatePair, Sequence[str]]]]
# Backend names a caller may pass: the family names plus upstream's flag name.
_BACKEND_ALIASES = {**{b.value: b for b in Backend}, "tensorrt": Backend.PLAN}
_DTYPE_NAMES = frozenset(d.value for d in DType)
BATCHED_MAX_BATCH = 8


def normalize_dtype(dtype: Any) -> DType:
    """The model dtype of a numpy dtype, numpy type or dtype name.

    Args:
        dtype: `np.float32`, `np.dtype("int32")`, `np.object_`, `bool`, `np.bool_`,
            a `DType`, or a name as model names carry it (`"int32"`, `"object"`).

    Raises:
        SpecError: the dtype is no `DType` value (upstream's float32, int32,
            object, bool, or a state-coverage type such as float64).
    """
    if isinstance(dtype, DType):
        return dtype
    choices = ", ".join(d.value for d in DType)
    if isinstance(dtype, str) and dtype in _DTYPE_NAMES:
        return DType(dtype)
    try:
        if dtype is None:  # np.dtype(None) would quietly mean float64
            raise TypeError
        name = np.dtype(dtype).name
    except TypeError:
        raise SpecError(f"dtype {dtype!r} is not a numpy dtype; use one of: {choices}") from None
    try:
        return DType(name)
    except ValueError:
        hint = " (strings are 'object', np.object_)" if name.startswith("str") else ""
        raise SpecError(f"dtype '{name}' is not supported{hint}; use one of: {choices}") from None


def _backend(value: Union[str, Backend]) -> Backend:
    try:
        return _BACKEND_ALIASES[value]  # a Backend is a str enum: it is its own key
    except (KeyError, TypeError):
        raise SpecError(
            f"backend {value!r} is unknown; use one of: {', '.join(_BACKEND_ALIASES)}"
        ) from None


def _int(field: str, value: Any, minimum: int) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, (bool, np.bool_)):
        raise SpecError(f"{field} must be an int, got {value!r}")
    if value < minimum:
        raise SpecError(f"{field} is {value}; it must be >= {minimum}")
    return int(value)


def _plain(value: Any) -> Any:
    """JSON-like form of an argument: numpy ints become ints, sequences lists."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, StatePair):
        return [value.input, value.output]
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def make_variant(
    backend: Union[str, Backend], max_batch: int, dtype: Any, shape: Sequence[int], *,
    initial_state: Union[str, InitialState, None] = "none", state_pairs: StatePairsArg = None,
    dyna: bool = False,
) -> Variant:
    """The validated `Variant` the API functions build (arguments as theirs).

    Raises:
        SpecError: an argument has the wrong type or an unknown value.
        UnsupportedVariantError: the combination is one the contract excludes.
    """
    spec = {
        "backend": _backend(backend).value,
        "dtype": normalize_dtype(dtype).value,
        "shape": _plain(shape),
        "max_batch": _plain(max_batch),
        "initial_state": "none" if initial_state is None else _plain(initial_state),
        "strategy": (Strategy.OLDEST if dyna else Strategy.DIRECT).value,
    }
    if state_pairs is not None:
        spec["state_pairs"] = _plain(state_pairs)
    # The same decoding and validation as the Bazel build's specs.
    return Variant.from_spec(spec)


def model_name(backend: Union[str, Backend], max_batch: int, dtype: Any, **variant_args) -> str:
    """Model name per the naming rule, e.g. `onnx_nobatch_sequence_int32` for max_batch 0.

    `variant_args` as `make_variant`'s: `dyna=True` or `state_pairs` change the name.
    """
    return make_variant(backend, max_batch, dtype, [1], **variant_args).name


@contextlib.contextmanager
def _staging(models_dir: pathlib.Path) -> Iterator[pathlib.Path]:
    """A temporary directory in models_dir; on failure nothing remains."""
    created = not models_dir.exists()
    check_output_dir(models_dir)
    staging = pathlib.Path(tempfile.mkdtemp(prefix=".staging.", dir=models_dir))
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if created:
            with contextlib.suppress(OSError):
                models_dir.rmdir()
        raise
    shutil.rmtree(staging, ignore_errors=True)


def _build_model(variant: Variant, options: BuildOptions, version_dir: pathlib.Path) -> None:
    """Run the variant's builder, in a forked child if the builder asks for it."""
    builder = builder_for(variant.backend)
    fork_child.call(lambda: builder.write_model(variant, options, version_dir),
                    fork=getattr(builder, "FORK_PER_MODEL", False))


def _write_modelfile(backend: Backend, models_dir: PathArg, model_version: int, max_batch: int,
                     dtype: Any, shape: Sequence[int], options: BuildOptions,
                     **variant_args) -> pathlib.Path:
    variant = make_variant(backend, max_batch, dtype, shape, **variant_args)
    version = _int("model_version", model_version, 1)
    models_dir = pathlib.Path(models_dir)
    model_file = family_info(variant).model_file
    with _staging(models_dir) as staging:
        built, trash = staging / "built", staging / "trash"
        built.mkdir()
        trash.mkdir()
        _build_model(variant, options, built)
        version_dir = models_dir / variant.name / str(version)
        version_dir.mkdir(parents=True, exist_ok=True)
        if (version_dir / model_file).is_dir():  # a savedmodel: rename the old one away first
            os.rename(version_dir / model_file, trash / model_file)
        os.replace(built / model_file, version_dir / model_file)
    return version_dir / model_file


def create_onnx_modelfile(models_dir: PathArg, model_version: int, max_batch: int, dtype: Any,
                          shape: Sequence[int], *, initial_state: str = "none",
                          state_pairs: StatePairsArg = None, dyna: bool = False,
                          onnx_opset: int = DEFAULT_ONNX_OPSET,
                          onnx_ir_version: int = DEFAULT_ONNX_IR_VERSION) -> pathlib.Path:
    """Write `models_dir/<model name>/<model_version>/model.onnx`; returns its path.

    Args:
        models_dir: repository directory (created if missing).
        model_version: version directory, a positive int.
        max_batch: max_batch_size (0: the `onnx_nobatch` model).
        dtype: numpy dtype or name (`np.int32`, `"object"`, `bool`, ...).
        shape: data dims without batch; -1 for a variable dim.
        initial_state: `"none"`, `"zero"` or `"file"` (the graph differs).
        state_pairs: (input, output) state tensor names; default one INPUT_STATE pair.
        dyna: the dyna (oldest-strategy) model.
        onnx_opset: default-domain opset of the graph.
        onnx_ir_version: ONNX IR version of the file.

    Raises:
        OptionError: an opset or IR version the pinned onnx does not know, or an
            opset newer than the IR version carries; nothing written.
        SpecError, UnsupportedVariantError, OutputDirError: bad input; nothing written.
    """
    options = BuildOptions(onnx_opset=onnx_opset, onnx_ir_version=onnx_ir_version)
    return _write_modelfile(Backend.ONNX, models_dir, model_version, max_batch, dtype, shape,
                            options, initial_state=initial_state, state_pairs=state_pairs,
                            dyna=dyna)


def create_tf_modelfile(models_dir: PathArg, model_version: int, max_batch: int, dtype: Any,
                        shape: Sequence[int], *, initial_state: str = "none",
                        state_pairs: StatePairsArg = None) -> pathlib.Path:
    """Write `models_dir/<model name>/<model_version>/model.savedmodel/`; returns its path.

    The `savedmodel` family, built in a forked child (TensorFlow numbers its
    functions process-wide) so the bytes equal the Bazel build's. Arguments
    and errors as `create_onnx_modelfile`.
    """
    return _write_modelfile(Backend.SAVEDMODEL, models_dir, model_version, max_batch, dtype,
                            shape, BuildOptions(), initial_state=initial_state,
                            state_pairs=state_pairs)


def create_plan_modelfile(models_dir: PathArg, model_version: int, max_batch: int, dtype: Any,
                          shape: Sequence[int], *, initial_state: str = "none",
                          state_pairs: StatePairsArg = None, dyna: bool = False) -> pathlib.Path:
    """Write `models_dir/<model name>/<model_version>/model.plan`; returns its path.

    Float32 and int32 only. Arguments as `create_onnx_modelfile`.

    Raises:
        BackendUnavailableError: TensorRT or a CUDA GPU is missing; nothing written.
        SpecError, UnsupportedVariantError, OutputDirError: bad input; nothing written.
    """
    return _write_modelfile(Backend.PLAN, models_dir, model_version, max_batch, dtype, shape,
                            BuildOptions(), initial_state=initial_state,
                            state_pairs=state_pairs, dyna=dyna)


def create_python_modelfile(models_dir: PathArg, model_version: int, max_batch: int, dtype: Any,
                            shape: Sequence[int], *, initial_state: str = "none",
                            state_pairs: StatePairsArg = None) -> pathlib.Path:
    """Write `models_dir/<model name>/<model_version>/model.py`; returns its path.

    Every python model serves the same source, which reads its config at load
    time. Arguments and errors as `create_onnx_modelfile`.
    """
    return _write_modelfile(Backend.PYTHON, models_dir, model_version, max_batch, dtype, shape,
                            BuildOptions(), initial_state=initial_state,
                            state_pairs=state_pairs)


def create_libtorch_modelfile(models_dir: PathArg, model_version: int, max_batch: int,
                              dtype: Any, shape: Sequence[int], *, initial_state: str = "none",
                              state_pairs: StatePairsArg = None) -> pathlib.Path:
    """Write `models_dir/<model name>/<model_version>/model.pt`; returns its path.

    The `libtorch` family (TorchScript for Triton's pytorch backend). Strings
    only without batching (max_batch 0); at most 4 state pairs, named
    without `__` (the config appends each tensor's `__<index>`). Arguments
    and errors as `create_onnx_modelfile`.
    """
    return _write_modelfile(Backend.LIBTORCH, models_dir, model_version, max_batch, dtype, shape,
                            BuildOptions(), initial_state=initial_state,
                            state_pairs=state_pairs)


def _config_backend(name: str, backend: Union[str, Backend, None]) -> Backend:
    """The explicit backend, else the family the model name starts with, else onnx."""
    named = next((b for b in Backend if name.startswith(f"{b.value}_")), None)
    if backend is None:
        return named or Backend.ONNX
    chosen = _backend(backend)
    if named is not None and named is not chosen:
        raise SpecError(
            f"model_name '{name}' names the {named.value} family but backend is"
            f" '{chosen.value}'; pass backend='{named.value}' or rename the model"
        )
    return chosen


def _write_atomic(path: pathlib.Path, data: bytes) -> None:
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(temp, path)


def create_modelconfig(models_dir: PathArg, model_name: str, max_batch: int, dtype: Any,
                       shape: Sequence[int], state_pairs: StatePairsArg = None, *,
                       backend: Union[str, Backend, None] = None, initial_state: str = "none",
                       dyna: bool = False) -> pathlib.Path:
    """Write `models_dir/<model_name>/config.pbtxt`; returns its path.

    With `initial_state="file"` it first writes `initial_state/<state>_data`
    (one file per state pair) beside the config.

    Args:
        models_dir: repository directory (created if missing).
        model_name: the config's `name` and the model directory's name.
        max_batch: max_batch_size (0: no batching).
        dtype: numpy dtype or name, as `normalize_dtype` takes.
        shape: data dims without batch; -1 for a variable dim.
        state_pairs: (input, output) state tensor names; None: one INPUT_STATE pair.
        backend: model family; default the one model_name starts with, else onnx.
        initial_state: `"none"`, `"zero"` or `"file"`.
        dyna: the dyna (oldest-strategy) config.

    Raises:
        SpecError, UnsupportedVariantError, OutputDirError: bad input; nothing written.
    """
    if not isinstance(model_name, str) or model_name in ("", ".", "..") or "/" in model_name:
        raise SpecError(f"model_name {model_name!r} is not a directory name")
    variant = make_variant(_config_backend(model_name, backend), max_batch, dtype, shape,
                           initial_state=initial_state, state_pairs=state_pairs, dyna=dyna)
    config = build_config(variant)
    config.name = model_name
    models_dir = pathlib.Path(models_dir)
    check_output_dir(models_dir)
    model_dir = models_dir / model_name
    model_dir.mkdir(exist_ok=True)
    if variant.initial_state is InitialState.FILE:
        (model_dir / "initial_state").mkdir(exist_ok=True)
        for name, data in initial_state_files(variant).items():
            _write_atomic(model_dir / "initial_state" / name, data)
    _write_atomic(model_dir / "config.pbtxt", config_text(config).encode())
    return model_dir / "config.pbtxt"


_MODELFILE_WRITERS = {
    Backend.ONNX: create_onnx_modelfile,
    Backend.SAVEDMODEL: create_tf_modelfile,
    Backend.PYTHON: create_python_modelfile,
    Backend.PLAN: create_plan_modelfile,
    Backend.LIBTORCH: create_libtorch_modelfile,
}


def create_models(models_dir: PathArg, dtype: Any, shape: Sequence[int], no_batch: bool = True, *,
                  backends: Sequence[str] = ("onnx",), initial_state: str = "none",
                  state_pairs: StatePairsArg = None) -> List[pathlib.Path]:
    """Write whole models (model file, then config) of one dtype and shape.

    For each backend: the batched model (max_batch 8) and, if no_batch, the
    `_nobatch` one, each as `models_dir/<model name>/1/model.<ext>` plus
    `config.pbtxt` (and initial-state files). Every combination is checked
    before anything is written.

    Args:
        models_dir: repository directory (created if missing).
        dtype: numpy dtype or name, as `normalize_dtype` takes.
        shape: data dims without batch; -1 for a variable dim.
        no_batch: also write the max_batch 0 models.
        backends: families to write (`onnx`, `savedmodel`, `python`, `plan`/`tensorrt`,
            `libtorch`).
        initial_state: `"none"`, `"zero"` or `"file"`.
        state_pairs: (input, output) state tensor names; None: one INPUT_STATE pair.

    Returns:
        The model directories written.
    """
    backends = (backends,) if isinstance(backends, str) else backends
    batches = [BATCHED_MAX_BATCH, 0] if no_batch else [BATCHED_MAX_BATCH]
    variant_args = {"initial_state": initial_state, "state_pairs": state_pairs}
    variants = [make_variant(b, m, dtype, shape, **variant_args) for b in backends for m in batches]
    written = []
    for variant in variants:
        _MODELFILE_WRITERS[variant.backend](models_dir, MODEL_VERSION, variant.max_batch, dtype, shape,
                                            **variant_args)
        create_modelconfig(models_dir, variant.name, variant.max_batch, dtype, shape,
                           state_pairs, backend=variant.backend, initial_state=initial_state)
        written.append(pathlib.Path(models_dir) / variant.name)
    return written
