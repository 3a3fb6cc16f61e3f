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
"""

import functools
import itertools
import pathlib
from typing import FrozenSet, Iterator, List

import onnx
from onnx import TensorProto, helper

from generators.build_options import BuildOptions
from generators.variant import (
    DEFAULT_STATE_PAIRS,
    MULTI_STATE_DTYPES,
    Backend,
    DType,
    InitialState,
    StatePair,
    Variant,
)

_DATA_ELEM = {
    DType.FLOAT32: TensorProto.FLOAT,
    DType.INT32: TensorProto.INT32,
    DType.OBJECT: TensorProto.STRING,
    DType.BOOL: TensorProto.INT32,
}
_CONTROL_ELEM = {
    DType.FLOAT32: TensorProto.FLOAT,
    DType.INT32: TensorProto.INT32,
    DType.OBJECT: TensorProto.INT32,
    DType.BOOL: TensorProto.BOOL,
}
PRODUCER = "triton-implicit-models"


def _shape(variant: Variant, dims, tensor: str) -> List:
    batch = ["batch"] if variant.max_batch > 0 else []
    return batch + [f"{tensor.lower()}_dim{i}" if d == -1 else d for i, d in enumerate(dims)]


def _inputs(variant: Variant) -> List[onnx.ValueInfoProto]:
    data, control = _DATA_ELEM[variant.dtype], _CONTROL_ELEM[variant.dtype]
    inputs = [
        helper.make_tensor_value_info(pair.input, data, _shape(variant, variant.shape, pair.input))
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
    data = _DATA_ELEM[variant.dtype]
    names = ["OUTPUT"] + [pair.output for pair in variant.state_pairs]
    return [helper.make_tensor_value_info(n, data, _shape(variant, variant.shape, n)) for n in names]


def _as_bool(name: str, variant: Variant, nodes: List[onnx.NodeProto]) -> str:
    if _CONTROL_ELEM[variant.dtype] == TensorProto.BOOL:
        return name
    nodes.append(helper.make_node("Cast", [name], [f"{name}_bool"], to=TensorProto.BOOL))
    return f"{name}_bool"


def _state_nodes(variant: Variant, index: int, nodes: List, weights: List) -> str:
    """Nodes of state pair `index`: (index + 1) * INPUT + state, gated; returns the result."""
    suffix = f"_{index}" if index else ""
    scaled = "INPUT"
    if index:
        weight = f"weight{suffix}"
        weights.append(helper.make_tensor(weight, _DATA_ELEM[variant.dtype], [], [index + 1]))
        scaled = f"scaled{suffix}"
        nodes.append(helper.make_node("Mul", ["INPUT", weight], [scaled]))
    nodes.append(helper.make_node("Add", [scaled, variant.state_pairs[index].input], [f"sum{suffix}"]))
    if variant.initial_state is not InitialState.NONE:
        return f"sum{suffix}"
    nodes.append(helper.make_node("Where", ["carry", f"sum{suffix}", scaled], [f"result{suffix}"]))
    return f"result{suffix}"


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
        results = [_state_nodes(variant, k, nodes, weights) for k in range(len(variant.state_pairs))]
    total = results[0]
    for index, result in enumerate(results[1:], 1):  # OUTPUT = sum of (k + 1) * new_k
        nodes.append(helper.make_node("Mul", [result, f"weight_{index}"], [f"weighted_{index}"]))
        nodes.append(helper.make_node("Add", [total, f"weighted_{index}"], [f"total_{index}"]))
        total = f"total_{index}"
    nodes.append(helper.make_node("Identity", [total], ["OUTPUT"]))
    for pair, result in zip(variant.state_pairs, results, strict=True):
        nodes.append(helper.make_node("Identity", [result], [pair.output]))
    return nodes


def _one_variant_per_branch() -> Iterator[Variant]:
    """A variant down each branch of `_nodes`: every dtype and initial state, one and two pairs.

    Dyna models only add graph inputs, and the shape and batching change no node.
    """
    two_pairs = DEFAULT_STATE_PAIRS + (StatePair("INPUT_STATE_1", "OUTPUT_STATE_1"),)
    for dtype, initial_state, pairs in itertools.product(
            DType, InitialState, (DEFAULT_STATE_PAIRS, two_pairs)):
        if pairs is two_pairs and dtype not in MULTI_STATE_DTYPES:
            continue
        yield Variant(backend=Backend.ONNX, dtype=dtype, shape=(1,), max_batch=0,
                      initial_state=initial_state, state_pairs=pairs)


@functools.lru_cache(maxsize=None)
def op_types() -> FrozenSet[str]:
    """Every operator type this builder's graphs use (BuildOptions checks them against the opset)."""
    return frozenset(node.op_type for variant in _one_variant_per_branch()
                     for node in _nodes(variant, []))


def build_model(variant: Variant, options: BuildOptions) -> onnx.ModelProto:
    """The ONNX model of a variant, with pinned IR version and opset.

    onnx's full check (shape inference included) runs here only for a
    version other than the default: its first call builds onnx's operator
    registry, most of a one-line CLI run's own work. Every model at the
    default versions is checked by //tests:onnx_graph_test, and every model
    at every accepted opset by //tests:onnx_opset_test.
    """
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
