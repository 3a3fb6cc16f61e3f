"""ONNX Runtime builder: the implicit-state graph of one variant as `model.onnx`.

Graph inputs are exactly INPUT_STATE, INPUT, START, READY (dyna models add
END and CORRID, which no node reads): Triton's onnxruntime backend requires
the model's input count to equal config inputs + controls + states.

Arithmetic (CONTRACT.md section 3), with S = INPUT_STATE:
- numeric/bool, no initial state: Where(READY and not START, INPUT + S, INPUT).
  A select rather than `S * gate`, so an uninitialized (possibly NaN) float
  state at START cannot leak into the result.
- numeric/bool with an initial state: INPUT + S (Triton resets S on START).
- strings: identity (upstream's quirk that the QA clients encode).
"""

import pathlib
from typing import List

import onnx
from onnx import TensorProto, helper

from generators.build_options import BuildOptions
from generators.variant import STATE_INPUT, STATE_OUTPUT, DType, InitialState, Variant

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
        helper.make_tensor_value_info(STATE_INPUT, data, _shape(variant, variant.shape, STATE_INPUT)),
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


def _as_bool(name: str, variant: Variant, nodes: List[onnx.NodeProto]) -> str:
    if _CONTROL_ELEM[variant.dtype] == TensorProto.BOOL:
        return name
    nodes.append(helper.make_node("Cast", [name], [f"{name}_bool"], to=TensorProto.BOOL))
    return f"{name}_bool"


def _nodes(variant: Variant) -> List[onnx.NodeProto]:
    if variant.dtype is DType.OBJECT:
        result = "INPUT"
        nodes = []
    elif variant.initial_state is not InitialState.NONE:
        result = "sum"
        nodes = [helper.make_node("Add", ["INPUT", STATE_INPUT], ["sum"])]
    else:
        nodes = []
        start = _as_bool("START", variant, nodes)
        ready = _as_bool("READY", variant, nodes)
        nodes += [
            helper.make_node("Not", [start], ["not_start"]),
            helper.make_node("And", [ready, "not_start"], ["carry"]),
            helper.make_node("Add", ["INPUT", STATE_INPUT], ["sum"]),
            helper.make_node("Where", ["carry", "sum", "INPUT"], ["result"]),
        ]
        result = "result"
    nodes.append(helper.make_node("Identity", [result], ["OUTPUT"]))
    nodes.append(helper.make_node("Identity", [result], [STATE_OUTPUT]))
    return nodes


def build_model(variant: Variant, options: BuildOptions) -> onnx.ModelProto:
    """The checked ONNX model of a variant, with pinned IR version and opset."""
    data = _DATA_ELEM[variant.dtype]
    outputs = [
        helper.make_tensor_value_info("OUTPUT", data, _shape(variant, variant.shape, "OUTPUT")),
        helper.make_tensor_value_info(
            STATE_OUTPUT, data, _shape(variant, variant.shape, STATE_OUTPUT)
        ),
    ]
    graph = helper.make_graph(_nodes(variant), variant.name, _inputs(variant), outputs)
    model = helper.make_model(
        graph,
        producer_name=PRODUCER,
        opset_imports=[helper.make_opsetid("", options.onnx_opset)],
        ir_version=options.onnx_ir_version,
    )
    onnx.checker.check_model(model, full_check=True)
    return model


def write_model(variant: Variant, options: BuildOptions, version_dir: pathlib.Path) -> None:
    """Write `model.onnx` into the version directory."""
    model = build_model(variant, options)
    (version_dir / "model.onnx").write_bytes(model.SerializeToString(deterministic=True))
