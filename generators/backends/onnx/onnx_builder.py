"""ONNX Runtime builder: the implicit-state graph of one variant as `model.onnx`.

Graph inputs are exactly INPUT_STATE, INPUT, START, READY (dyna models add
END and CORRID, which no node reads): Triton's onnxruntime backend requires
the model's input count to equal config inputs + controls + states. A
multi-state variant has one state input and output per pair.

Arithmetic (CONTRACT.md section 3), with S = INPUT_STATE:
- numeric/bool, no initial state: Where(READY and not START, INPUT + S, INPUT).
  A select rather than `S * gate`, so an uninitialized (possibly NaN) float
  state at START cannot leak into the result.
- numeric/bool with an initial state: INPUT + S (Triton resets S on START).
- strings: identity (upstream's quirk that the QA clients encode).
With several state pairs, pair k computes the same with (k + 1) * INPUT in
place of INPUT, returns it as its own state output, and OUTPUT is the sum
over the pairs of (k + 1) times each, so a model whose states Triton swapped
answers differently (docs/models.md, "Several states").

The state-coverage variants (docs/models.md, "Every state type"):
- The sum is taken in the state's type: INPUT is cast to it when narrower
  (int32 -> int64, float16 -> float32). Where the CPU kernels of ONNX
  Runtime 1.19 (Triton 24.10's) have no `Add` for the state's type (8- and
  16-bit integers, unsigned integers, bfloat16), INPUT and S are cast to a
  type that has one (`_COMPUTE_ELEM`) and the result is cast back, so the
  state Triton keeps has the configured type. A bfloat16 graph needs opset
  13, the first whose `Cast` carries bfloat16; Triton's r24.10 onnxruntime
  backend refuses TYPE_BF16 tensors at load, so the matrix holds none
  (generators/served_types.py) until a backend that maps them is served.
- A boolean state (TYPE_BOOL) keeps the running parity: INPUT xor S. ONNX
  Runtime has no bool `Where`, so without an initial state the state is
  gated by `And(READY and not START, S)` instead: false on START, whatever
  the uninitialized buffer holds.
- State dims [2] (`_state_sum_count`): S = [sum, count]; the new state is
  S + [INPUT, 1] (gated as above, [INPUT, 1] alone on START) and OUTPUT =
  sum + 100 * count, one MatMul with [[1], [100]].
- State dims [] (`_state_scalar`): S is reshaped to INPUT's layout, added as
  above, and the new state reshaped back to the scalar layout.
"""

import functools
import itertools
import pathlib
from typing import FrozenSet, Iterator, List, Tuple

import onnx
from onnx import TensorProto, helper

from generators.build_options import BuildOptions
from generators.errors import OptionError
from generators.variant import (
    DEFAULT_STATE_PAIRS,
    MULTI_STATE_DTYPES,
    STATE_DIMS_CHOICES,
    STATE_DIMS_DTYPES,
    WIDER_STATE_DTYPES,
    Backend,
    DType,
    InitialState,
    StatePair,
    Variant,
    backend_builds,
)

_DATA_ELEM = {
    DType.FLOAT32: TensorProto.FLOAT,
    DType.INT32: TensorProto.INT32,
    DType.OBJECT: TensorProto.STRING,
    DType.BOOL: TensorProto.INT32,
    DType.BOOLEAN: TensorProto.BOOL,
    DType.INT8: TensorProto.INT8,
    DType.INT16: TensorProto.INT16,
    DType.INT64: TensorProto.INT64,
    DType.UINT8: TensorProto.UINT8,
    DType.UINT16: TensorProto.UINT16,
    DType.UINT32: TensorProto.UINT32,
    DType.UINT64: TensorProto.UINT64,
    DType.FLOAT16: TensorProto.FLOAT16,
    DType.BFLOAT16: TensorProto.BFLOAT16,
    DType.FLOAT64: TensorProto.DOUBLE,
}
_CONTROL_ELEM = {dtype: TensorProto.INT32 for dtype in DType} | {
    DType.FLOAT32: TensorProto.FLOAT,
    DType.BOOL: TensorProto.BOOL,
    DType.BOOLEAN: TensorProto.BOOL,
}
# State types whose sum ONNX Runtime 1.19's CPU kernels cannot take (no
# `Add` kernel: "Could not find an implementation for Add(14)"): the type
# the sum is computed in instead. Every value the contract sends fits.
_COMPUTE_ELEM = {
    DType.INT8: TensorProto.INT64,
    DType.INT16: TensorProto.INT64,
    DType.UINT8: TensorProto.INT64,
    DType.UINT16: TensorProto.INT64,
    DType.UINT32: TensorProto.INT64,
    DType.UINT64: TensorProto.INT64,
    DType.BFLOAT16: TensorProto.FLOAT,
}
# The first opset whose operators (Cast) carry bfloat16.
BFLOAT16_OPSET = 13
# `_state_sum_count`'s dims and its OUTPUT = sum + SUM_COUNT_WEIGHT * count;
# `_state_scalar`'s dims.
SUM_COUNT_DIMS = (2,)
SUM_COUNT_WEIGHT = 100
SCALAR_DIMS = ()
PRODUCER = "triton-implicit-models"


def _shape(variant: Variant, dims, tensor: str) -> List:
    batch = ["batch"] if variant.max_batch > 0 else []
    return batch + [f"{tensor.lower()}_dim{i}" if d == -1 else d for i, d in enumerate(dims)]


def _inputs(variant: Variant) -> List[onnx.ValueInfoProto]:
    data, control = _DATA_ELEM[variant.dtype], _CONTROL_ELEM[variant.dtype]
    state = _DATA_ELEM[variant.state_type]
    inputs = [
        helper.make_tensor_value_info(pair.input, state,
                                      _shape(variant, variant.state_layout, pair.input))
        for pair in variant.state_pairs
    ]
    inputs += [
        helper.make_tensor_value_info("INPUT", data, _shape(variant, variant.shape, "INPUT")),
        helper.make_tensor_value_info("START", control, _shape(variant, [1], "START")),
        helper.make_tensor_value_info("READY", control, _shape(variant, [1], "READY")),
    ]
    if variant.dyna:
        inputs.append(helper.make_tensor_value_info("END", control, _shape(variant, [1], "END")))
        inputs.append(
            helper.make_tensor_value_info("CORRID", TensorProto.UINT64, _shape(variant, [1], "CORRID"))
        )
    return inputs


def _outputs(variant: Variant) -> List[onnx.ValueInfoProto]:
    state = _DATA_ELEM[variant.state_type]
    outputs = [helper.make_tensor_value_info("OUTPUT", state,
                                             _shape(variant, variant.shape, "OUTPUT"))]
    outputs += [helper.make_tensor_value_info(pair.output, state,
                                              _shape(variant, variant.state_layout, pair.output))
                for pair in variant.state_pairs]
    return outputs


def _as_bool(name: str, variant: Variant, nodes: List[onnx.NodeProto]) -> str:
    if _CONTROL_ELEM[variant.dtype] == TensorProto.BOOL:
        return name
    nodes.append(helper.make_node("Cast", [name], [f"{name}_bool"], to=TensorProto.BOOL))
    return f"{name}_bool"


def _compute_elem(variant: Variant) -> int:
    """The element type the sum is computed in: the state's, unless ORT cannot add it."""
    return _COMPUTE_ELEM.get(variant.state_type, _DATA_ELEM[variant.state_type])


def _cast(name: str, elem: int, to: int, suffix: str, nodes: List[onnx.NodeProto]) -> str:
    """`name` as element type `to` (a Cast named `<name>_<suffix>`, none when it already is)."""
    if elem == to:
        return name
    nodes.append(helper.make_node("Cast", [name], [f"{name}_{suffix}"], to=to))
    return f"{name}_{suffix}"


def _reshaped(name: str, dims: List[int], variant: Variant, nodes: List, weights: List) -> str:
    """`name` reshaped to `dims` after the batch dim (batched: a leading -1)."""
    target = ([-1] if variant.max_batch > 0 else []) + dims
    shape = f"{name}_shape"
    weights.append(helper.make_tensor(shape, TensorProto.INT64, [len(target)], target))
    nodes.append(helper.make_node("Reshape", [name, shape], [f"{name}_reshaped"]))
    return f"{name}_reshaped"


def _state_nodes(variant: Variant, index: int, nodes: List, weights: List) -> str:
    """Nodes of state pair `index`: (index + 1) * INPUT + state, gated; returns the result.

    The result is in the compute type (`_compute_elem`) and INPUT's layout.
    """
    suffix = f"_{index}" if index else ""
    compute = _compute_elem(variant)
    scaled = _cast("INPUT", _DATA_ELEM[variant.dtype], compute, "compute", nodes)
    if index:
        weight = f"weight{suffix}"
        weights.append(helper.make_tensor(weight, compute, [], [index + 1]))
        nodes.append(helper.make_node("Mul", [scaled, weight], [f"scaled{suffix}"]))
        scaled = f"scaled{suffix}"
    state = _cast(variant.state_pairs[index].input, _DATA_ELEM[variant.state_type], compute,
                  "compute", nodes)
    if variant.state_dims == SCALAR_DIMS:  # to INPUT's layout
        state = _reshaped(state, list(variant.shape), variant, nodes, weights)
    if variant.state_type is DType.BOOLEAN:
        if variant.initial_state is InitialState.NONE:  # ONNX Runtime has no Where for bool
            nodes.append(helper.make_node("And", ["carry", state], ["carried_state"]))
            state = "carried_state"
        nodes.append(helper.make_node("Xor", [scaled, state], ["parity"]))
        return "parity"
    nodes.append(helper.make_node("Add", [scaled, state], [f"sum{suffix}"]))
    if variant.initial_state is not InitialState.NONE:
        return f"sum{suffix}"
    nodes.append(helper.make_node("Where", ["carry", f"sum{suffix}", scaled], [f"result{suffix}"]))
    return f"result{suffix}"


def _sum_count_nodes(variant: Variant, nodes: List, weights: List) -> Tuple[str, str]:
    """(OUTPUT, new state) of a [sum, count] state: S + [INPUT, 1], gated; sum + 100 * count."""
    elem = _DATA_ELEM[variant.state_type]
    weights.append(helper.make_tensor("input_to_sum", elem, [2], [1, 0]))
    weights.append(helper.make_tensor("one_step", elem, [2], [0, 1]))
    weights.append(helper.make_tensor("sum_count_weights", elem, [2, 1], [1, SUM_COUNT_WEIGHT]))
    nodes.append(helper.make_node("Mul", ["INPUT", "input_to_sum"], ["input_sum"]))
    nodes.append(helper.make_node("Add", ["input_sum", "one_step"], ["increment"]))
    nodes.append(helper.make_node("Add", [variant.state_pairs[0].input, "increment"], ["sum"]))
    state = "sum"
    if variant.initial_state is InitialState.NONE:
        nodes.append(helper.make_node("Where", ["carry", "sum", "increment"], ["result"]))
        state = "result"
    nodes.append(helper.make_node("MatMul", [state, "sum_count_weights"], ["weighted_sum"]))
    return "weighted_sum", state


def _nodes(variant: Variant, weights: List) -> List[onnx.NodeProto]:
    nodes = []
    if variant.dtype is DType.OBJECT:
        results = ["INPUT"]
    else:
        if variant.initial_state is InitialState.NONE:
            start = _as_bool("START", variant, nodes)
            ready = _as_bool("READY", variant, nodes)
            nodes.append(helper.make_node("Not", [start], ["not_start"]))
            nodes.append(helper.make_node("And", [ready, "not_start"], ["carry"]))
        if variant.state_dims == SUM_COUNT_DIMS:
            total, state = _sum_count_nodes(variant, nodes, weights)
            nodes.append(helper.make_node("Identity", [total], ["OUTPUT"]))
            nodes.append(helper.make_node("Identity", [state], [variant.state_pairs[0].output]))
            return nodes
        results = [_state_nodes(variant, k, nodes, weights) for k in range(len(variant.state_pairs))]
        results = [_cast(result, _compute_elem(variant), _DATA_ELEM[variant.state_type], "state",
                         nodes) for result in results]
    total = results[0]
    for index, result in enumerate(results[1:], 1):  # OUTPUT = sum of (k + 1) * new_k
        nodes.append(helper.make_node("Mul", [result, f"weight_{index}"], [f"weighted_{index}"]))
        nodes.append(helper.make_node("Add", [total, f"weighted_{index}"], [f"total_{index}"]))
        total = f"total_{index}"
    nodes.append(helper.make_node("Identity", [total], ["OUTPUT"]))
    for pair, result in zip(variant.state_pairs, results, strict=True):
        if variant.state_dims == SCALAR_DIMS:  # back to the scalar layout
            result = _reshaped(result, list(variant.state_layout), variant, nodes, weights)
        nodes.append(helper.make_node("Identity", [result], [pair.output]))
    return nodes


def _branch_fields() -> Iterator[dict]:
    """The fields of a variant down each branch of `_nodes` (shape [1], no batching).

    Every dtype and initial state, one and two pairs, each wider state and
    each state dims choice. Dyna models only add graph inputs, and the shape
    and batching change no node type.
    """
    two_pairs = DEFAULT_STATE_PAIRS + (StatePair("INPUT_STATE_1", "OUTPUT_STATE_1"),)
    for dtype, initial_state, pairs in itertools.product(
            DType, InitialState, (DEFAULT_STATE_PAIRS, two_pairs)):
        if pairs is DEFAULT_STATE_PAIRS or dtype in MULTI_STATE_DTYPES:
            yield {"dtype": dtype, "initial_state": initial_state, "state_pairs": pairs}
    for (dtype, state_dtype), initial_state in itertools.product(
            WIDER_STATE_DTYPES.items(), InitialState):
        yield {"dtype": dtype, "initial_state": initial_state, "state_dtype": state_dtype}
    for dtype, dims, initial_state in itertools.product(
            sorted(STATE_DIMS_DTYPES), STATE_DIMS_CHOICES, (InitialState.NONE, InitialState.ZERO)):
        yield {"dtype": dtype, "initial_state": initial_state, "state_dims": dims}


def _one_variant_per_branch() -> Iterator[Variant]:
    """A variant down each branch of `_nodes` whose types the onnxruntime backend serves.

    A dtype it cannot serve (generators/served_types.py) makes no variant.
    """
    for fields in _branch_fields():
        types = {fields["dtype"], fields.get("state_dtype") or fields["dtype"]}
        if all(backend_builds(Backend.ONNX, dtype, 0) for dtype in types):
            yield Variant(backend=Backend.ONNX, shape=(1,), max_batch=0, **fields)


@functools.lru_cache(maxsize=None)
def op_types() -> FrozenSet[str]:
    """Every operator type this builder's graphs use (BuildOptions checks them against the opset)."""
    return frozenset(node.op_type for variant in _one_variant_per_branch()
                     for node in _nodes(variant, []))


def _check_opset(variant: Variant, options: BuildOptions) -> None:
    """Refuse a bfloat16 graph below the first opset whose Cast carries bfloat16."""
    if options.onnx_opset < BFLOAT16_OPSET and DType.BFLOAT16 in (variant.dtype,
                                                                   variant.state_type):
        raise OptionError(
            f"onnx_opset {options.onnx_opset} cannot build {variant.name}: its bfloat16 tensors"
            f" need Cast from opset {BFLOAT16_OPSET} on (onnx's operator registry); pass"
            f" onnx_opset {BFLOAT16_OPSET} or newer")


def build_model(variant: Variant, options: BuildOptions) -> onnx.ModelProto:
    """The ONNX model of a variant, with pinned IR version and opset.

    onnx's full check (shape inference included) runs here only for a
    version other than the default: its first call builds onnx's operator
    registry, most of a one-line CLI run's own work. Every model at the
    default versions is checked by //tests:onnx_graph_test, and every model
    at every accepted opset by //tests:onnx_opset_test.
    """
    _check_opset(variant, options)
    weights: List[onnx.TensorProto] = []
    nodes = _nodes(variant, weights)
    graph = helper.make_graph(
        nodes, variant.name, _inputs(variant), _outputs(variant), initializer=weights
    )
    model = helper.make_model(
        graph,
        producer_name=PRODUCER,
        opset_imports=[helper.make_opsetid("", options.onnx_opset)],
        ir_version=options.onnx_ir_version,
    )
    if options != BuildOptions():
        onnx.checker.check_model(model, full_check=True)
    return model


def write_model(variant: Variant, options: BuildOptions, version_dir: pathlib.Path) -> None:
    """Write `model.onnx` into the version directory."""
    model = build_model(variant, options)
    (version_dir / "model.onnx").write_bytes(model.SerializeToString(deterministic=True))
