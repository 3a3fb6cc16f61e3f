"""TensorRT builder: the implicit-state network of one variant as `model.plan`.

Plans are GPU-only targets. TensorRT builds an engine for the GPU it runs on,
so this module needs the `tensorrt` Python package *and* a CUDA device. When
either is missing, `write_model` raises `BackendUnavailableError` before it
writes anything. Build plans on a GPU machine, after installing
`generators/backends/plan/requirements_gpu.in` (which `--config=gpu` does), with
`bazel build --config=gpu //models:implicit_repo`; on the host platform Bazel
skips the plan targets. A plan loads only in the TensorRT version that built
it, so pin the package to the TensorRT inside the Triton release you serve.

Engine I/O (CONTRACT.md sections 2-3). Inputs INPUT, START, READY,
INPUT_STATE (dyna models add END and CORRID), all of the model dtype except
CORRID, which is int32. Outputs OUTPUT and OUTPUT_STATE, always equal.
Multi-state variants have one state input and output per pair, in order.
Batched shapes are [-1] + dims for data and [-1, 1] for controls; without
batching, dims and [1]. The optimisation profile gives the batch dim
min 1 and opt = max = max(1, max_batch), and every -1 data dim 1 / 8 / 32.

Arithmetic, with X = INPUT and S = INPUT_STATE:
- no initial state: select(START == 0, X + S, X). A select rather than
  upstream's X + S * (1 - START), so an uninitialized (possibly NaN) float
  state at START cannot leak into the result. READY is not read.
- zero or file initial state: X + S (Triton resets S on START).
- dyna: select(START == 0 and READY != 0, X + S, X); END and CORRID unread.
Several state pairs: pair k computes this with (k + 1) * X for X and its own
S_k into its own state output; OUTPUT is the sum over the pairs of
(k + 1) * new_k, so the pairs are told apart.

Inputs the arithmetic does not read must still be engine inputs, so that
the engine's I/O matches the inputs, controls and state the config declares.
TensorRT 8 keeps an unread network input (its log says such an input "is not
being removed"), but that is log text, not a documented promise, and
TensorRT 6 failed such builds with "Unused Input". So each unread input is
routed harmlessly into pair 0's result as `+ input * 0` (so into OUTPUT too):
exact for int32 (any CORRID value) and for float controls, which Triton fills
with 0 or 1 only.

TensorRT 10 and 11. What 11 removed, and what only makes sense in 10's
weakly typed networks, is used only where the API has it: BuilderFlag.
DIRECT_IO (removed in 11 as not needed); BuilderFlag.PREFER_PRECISION_
CONSTRAINTS (removed in 11: strong typing is always enforced) together with
ILayer.set_output_type (not allowed in strongly typed networks); the
explicit-batch network flag (ignored since 10, passed only to older
releases); build_engine and max_workspace_size (gone since 10, superseded by
build_serialized_network and set_memory_pool_limit). Sources: NVIDIA's
"Migrating Python Code from TensorRT 10.x to 11.x" with its "Removed Python
APIs and Replacements" list, the 8.x to 10.x Python migration appendix, and
the 10.x Python Builder reference (NetworkDefinitionCreationFlag). The
ITensor.dtype setter (deprecated in 10.x) and the INT8/FP16 flags are never
needed: every layer already computes in the model dtype.

Determinism: TensorRT picks kernels by timing them on the building GPU, so
two builds of one network need not give byte-identical plans; plans are left
out of the byte-identity checks and compared by running them
(tests/runners/plan_runner.py). No timing cache is used: only one persisted
across builds would help, and that would be an undeclared Bazel input.
"""

import ctypes
import dataclasses
import pathlib
from typing import List, Tuple

import numpy

from generators.build_options import BuildOptions
from generators.errors import BackendUnavailableError, GeneratorError
from generators.variant import DType, InitialState, Variant

MODEL_FILE = "model.plan"
WORKSPACE_BYTES = 1 << 20
VARIABLE_DIM_PROFILE = (1, 8, 32)  # min, opt, max of every -1 data dim
CORRID_DTYPE = DType.INT32
GPU_BUILD_HINT = (
    "plans must be built on a machine with an NVIDIA GPU: install"
    " generators/backends/plan/requirements_gpu.in there (--config=gpu installs it) and run"
    " `bazel build --config=gpu //models:implicit_repo`"
)


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    """One engine I/O tensor with its optimisation-profile shapes.

    Attributes:
        name: Tensor name as Triton's config uses it.
        dtype: Element type.
        shape: Network shape, -1 for dynamic dims.
        min_shape: Profile minimum (equal to shape when static).
        opt_shape: Profile optimum.
        max_shape: Profile maximum.
    """

    name: str
    dtype: DType
    shape: Tuple[int, ...]
    min_shape: Tuple[int, ...]
    opt_shape: Tuple[int, ...]
    max_shape: Tuple[int, ...]

    @property
    def dynamic(self) -> bool:
        """Whether the tensor needs an optimisation-profile entry."""
        return -1 in self.shape


def _tensor(variant: Variant, name: str, dtype: DType, dims: Tuple[int, ...]) -> TensorSpec:
    """A tensor of `dims` per request, batched when the variant batches."""
    batched = variant.max_batch > 0
    batch = max(1, variant.max_batch)
    bounds = []
    for which, batch_bound in enumerate((1, batch, batch)):
        data = tuple(VARIABLE_DIM_PROFILE[which] if d == -1 else d for d in dims)
        bounds.append(((batch_bound,) if batched else ()) + data)
    shape = ((-1,) if batched else ()) + tuple(dims)
    return TensorSpec(name, dtype, shape, *bounds)


def engine_inputs(variant: Variant) -> List[TensorSpec]:
    """The engine's input tensors, in declaration order."""
    data, control = variant.shape, (1,)
    specs = [
        _tensor(variant, "INPUT", variant.dtype, data),
        _tensor(variant, "START", variant.dtype, control),
        _tensor(variant, "READY", variant.dtype, control),
    ]
    specs += [_tensor(variant, pair.input, variant.dtype, data) for pair in variant.state_pairs]
    if variant.dyna:
        specs.append(_tensor(variant, "END", variant.dtype, control))
        specs.append(_tensor(variant, "CORRID", CORRID_DTYPE, control))
    return specs


def engine_outputs(variant: Variant) -> List[TensorSpec]:
    """The engine's output tensors: OUTPUT, then each pair's state output (OUTPUT_STATE...)."""
    names = ["OUTPUT"] + [pair.output for pair in variant.state_pairs]
    return [_tensor(variant, name, variant.dtype, variant.shape) for name in names]


def unread_inputs(variant: Variant) -> Tuple[str, ...]:
    """Inputs the arithmetic does not read; they are routed in as `* 0`."""
    if variant.dyna:
        return ("END", "CORRID")
    if variant.initial_state is not InitialState.NONE:
        return ("START", "READY")
    return ("READY",)


# --------------------------------------------------------------------------
# Availability checks: what is missing, before anything is written.


def import_tensorrt():
    """Import and return `tensorrt`, or raise BackendUnavailableError."""
    try:
        import tensorrt  # noqa: PLC0415 - optional, GPU machines only
    except ImportError as err:
        raise BackendUnavailableError(
            f"the Python package 'tensorrt' cannot be imported ({err}); {GPU_BUILD_HINT}"
        ) from None
    return tensorrt


def cuda_device_count(loader=ctypes.CDLL) -> int:
    """Number of CUDA devices the driver reports; 0 without a driver."""
    try:
        driver = loader("libcuda.so.1")
    except OSError:
        return 0
    if driver.cuInit(0) != 0:
        return 0
    count = ctypes.c_int(0)
    if driver.cuDeviceGetCount(ctypes.byref(count)) != 0:
        return 0
    return count.value


def require_cuda_device() -> None:
    """Raise BackendUnavailableError unless a CUDA GPU is usable."""
    if cuda_device_count() < 1:
        raise BackendUnavailableError(
            "no CUDA GPU found (libcuda.so.1 missing, cuInit failed or no device);"
            f" {GPU_BUILD_HINT}"
        )


def check_available() -> None:
    """Raise BackendUnavailableError unless TensorRT and a CUDA GPU are both here.

    The standalone CLI calls it before it creates or writes anything.
    """
    import_tensorrt()
    require_cuda_device()


# --------------------------------------------------------------------------
# Network construction.


def _trt_dtype(trt, dtype: DType):
    return {DType.FLOAT32: trt.float32, DType.INT32: trt.int32}[dtype]


def weakly_typed(trt) -> bool:
    """Whether this TensorRT still has weak typing (10.x; 11 removed it)."""
    return hasattr(trt.BuilderFlag, "PREFER_PRECISION_CONSTRAINTS")


class _NetworkWriter:
    """Adds one variant's layers to a TensorRT network definition.

    Constant weights stay referenced in `self.weights` until the engine is
    built: TensorRT reads them at build time, not when the layer is added.
    """

    def __init__(self, trt, network, variant: Variant) -> None:
        self.trt, self.network, self.variant = trt, network, variant
        self.specs = {spec.name: spec for spec in engine_inputs(variant)}
        self.tensors = {}
        self.weights = []

    def constant(self, value: int, rank: int):
        """A model-dtype constant of the given rank (all dims 1, so it broadcasts)."""
        array = numpy.full((1,) * rank, value, dtype=self.variant.dtype.value)
        self.weights.append(array)
        return self.network.add_constant((1,) * rank, self.trt.Weights(array)).get_output(0)

    def binary(self, left, right, op: str):
        """Output of an elementwise layer (`op` names an ElementWiseOperation)."""
        operation = getattr(self.trt.ElementWiseOperation, op)
        return self.network.add_elementwise(left, right, operation).get_output(0)

    def carry(self):
        """Bool tensor: whether the state carries into this step."""
        zero = self.constant(0, len(self.specs["START"].shape))
        not_start = self.binary(self.tensors["START"], zero, "EQUAL")
        if not self.variant.dyna:
            return not_start
        ready_zero = self.binary(self.tensors["READY"], zero, "EQUAL")
        ready = self.network.add_unary(ready_zero, self.trt.UnaryOperation.NOT).get_output(0)
        return self.binary(not_start, ready, "AND")

    def pair_results(self):
        """Each pair's new state, (k + 1) * INPUT + S_k (gated), before unread inputs."""
        carry, results = None, []
        for index, pair in enumerate(self.variant.state_pairs):
            scaled = self.tensors["INPUT"]
            if index:
                weight = self.constant(index + 1, len(self.specs["INPUT"].shape))
                scaled = self.binary(scaled, weight, "PROD")
            total = self.binary(scaled, self.tensors[pair.input], "SUM")
            if self.variant.initial_state is InitialState.NONE:
                if carry is None:  # after pair 0's sum: the single-state layer order
                    carry = self.carry()
                total = self.network.add_select(carry, total, scaled).get_output(0)
            results.append(total)
        return results

    def route_unread(self, result):
        """Add `input * 0` for every unread input so TensorRT must keep it."""
        for name in unread_inputs(self.variant):
            spec = self.specs[name]
            if spec.dtype is not self.variant.dtype:
                raise GeneratorError(
                    f"input '{name}' is {spec.dtype.value} but the model is"
                    f" {self.variant.dtype.value}; unread inputs must share the model dtype"
                )
            zero_term = self.binary(self.tensors[name], self.constant(0, len(spec.shape)), "PROD")
            result = self.binary(result, zero_term, "SUM")
        return result

    def linear_io(self, tensor) -> None:
        """Ask for row-major I/O, what Triton hands the engine.

        Together with DIRECT_IO (10.x) this also forbids reformat layers at
        the engine boundary.
        """
        if hasattr(self.trt, "TensorFormat") and hasattr(tensor, "allowed_formats"):
            tensor.allowed_formats = 1 << int(self.trt.TensorFormat.LINEAR)

    def declare_inputs(self) -> None:
        """Add every engine input with its dtype and network shape."""
        for spec in self.specs.values():
            tensor = self.network.add_input(spec.name, _trt_dtype(self.trt, spec.dtype), spec.shape)
            self.tensors[spec.name] = tensor
            self.linear_io(tensor)

    def mark_outputs(self, sources) -> None:
        """Expose each engine output through an identity layer of its source tensor."""
        for spec, source in zip(engine_outputs(self.variant), sources, strict=True):
            layer = self.network.add_identity(source)
            if weakly_typed(self.trt) and hasattr(layer, "set_output_type"):
                layer.set_output_type(0, _trt_dtype(self.trt, spec.dtype))
            tensor = layer.get_output(0)
            tensor.name = spec.name
            self.network.mark_output(tensor)
            self.linear_io(tensor)


def populate_network(trt, network, variant: Variant) -> list:
    """Declare a variant's inputs, arithmetic and outputs.

    Returns:
        The constant weights, which must stay alive until the engine is built.
    """
    writer = _NetworkWriter(trt, network, variant)
    writer.declare_inputs()
    results = writer.pair_results()
    results[0] = writer.route_unread(results[0])
    total = results[0]
    for index, result in enumerate(results[1:], 1):  # OUTPUT = sum of (k + 1) * new_k
        weight = writer.constant(index + 1, len(writer.specs["INPUT"].shape))
        total = writer.binary(total, writer.binary(result, weight, "PROD"), "SUM")
    writer.mark_outputs([total] + results)
    return writer.weights


# --------------------------------------------------------------------------
# Builder configuration and serialization.


def _major_version(trt) -> int:
    try:
        return int(str(getattr(trt, "__version__", "0")).split(".")[0])
    except ValueError:
        return 0


def _create_network(trt, builder):
    # Explicit batch: required before 10, deprecated and ignored in 10 (all
    # networks are explicit batch), so it is only passed to older releases.
    creation = getattr(trt, "NetworkDefinitionCreationFlag", None)
    if _major_version(trt) < 10 and hasattr(creation, "EXPLICIT_BATCH"):
        return builder.create_network(1 << int(creation.EXPLICIT_BATCH))
    return builder.create_network()


def configure(trt, builder, variant: Variant):
    """A builder config: 1 MiB workspace, guarded flags, the profile."""
    config = builder.create_builder_config()
    if hasattr(config, "set_memory_pool_limit"):
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    elif hasattr(config, "max_workspace_size"):
        config.max_workspace_size = WORKSPACE_BYTES
    if hasattr(trt.BuilderFlag, "DIRECT_IO"):
        config.set_flag(trt.BuilderFlag.DIRECT_IO)
    if weakly_typed(trt):
        config.set_flag(trt.BuilderFlag.PREFER_PRECISION_CONSTRAINTS)
    dynamic = [spec for spec in engine_inputs(variant) if spec.dynamic]
    if dynamic:  # a network of static inputs needs no profile
        profile = builder.create_optimization_profile()
        for spec in dynamic:
            profile.set_shape(spec.name, spec.min_shape, spec.opt_shape, spec.max_shape)
        config.add_optimization_profile(profile)
    return config


def _serialize(builder, network, config, variant: Variant) -> bytes:
    if hasattr(builder, "build_serialized_network"):
        plan = builder.build_serialized_network(network, config)
    else:  # TensorRT before 10
        engine = builder.build_engine(network, config)
        plan = engine.serialize() if engine is not None else None
    if plan is None:
        raise GeneratorError(
            f"TensorRT failed to build the engine of '{variant.name}'; the TensorRT log"
            " above says why (a GPU or TensorRT version the network does not suit?)"
        )
    return bytes(plan)


def _new_builder(trt):
    try:
        builder = trt.Builder(trt.Logger(trt.Logger.WARNING))
    except (RuntimeError, TypeError) as err:  # no usable CUDA device
        raise BackendUnavailableError(
            f"TensorRT cannot start a builder ({err}); {GPU_BUILD_HINT}"
        ) from None
    if builder is None:
        raise BackendUnavailableError(f"TensorRT cannot start a builder; {GPU_BUILD_HINT}")
    return builder


def build_plan(variant: Variant) -> bytes:
    """Build the serialized engine of a variant.

    Raises:
        BackendUnavailableError: TensorRT or a CUDA GPU is missing.
        GeneratorError: TensorRT could not build the engine.
    """
    trt = import_tensorrt()
    require_cuda_device()
    builder = _new_builder(trt)
    network = _create_network(trt, builder)
    weights = populate_network(trt, network, variant)
    config = configure(trt, builder, variant)
    plan = _serialize(builder, network, config, variant)
    del weights  # referenced until here on purpose: TensorRT reads them while building
    return plan


def write_model(variant: Variant, options: BuildOptions, version_dir: pathlib.Path) -> None:
    """Write `model.plan` into the version directory.

    Args:
        variant: The plan variant to build (float32 or int32).
        options: Generator-wide options; plans use none of them.
        version_dir: Existing directory that receives `model.plan`.

    Raises:
        BackendUnavailableError: TensorRT or a CUDA GPU is missing (nothing written).
        GeneratorError: TensorRT could not build the engine.
    """
    del options  # nothing in BuildOptions applies to TensorRT engines
    plan = build_plan(variant)
    (version_dir / MODEL_FILE).write_bytes(plan)
