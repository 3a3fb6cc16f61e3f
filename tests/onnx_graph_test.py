"""Each built ONNX graph matches its config (CONTRACT.md section 2, model-side rules).

For every onnx model of the built repositories (tests.repo_location): the
graph's inputs are exactly the config's state inputs (one per `state`
entry: INPUT_STATE, INPUT_STATE_1, ...), INPUT, START and READY (dyna adds
END and CORRID); its outputs exactly OUTPUT and the state outputs. Triton's
onnxruntime backend refuses a model whose input count differs. Element
types, symbolic batch and -1 dims, the pinned IR version and opset, and
onnx's full check are verified too. Running the models is the contract
test's job (model_contract_test.py).
"""

import json
import pathlib
import unittest
from typing import Dict, List, Tuple

import onnx
from tritonclient.grpc import model_config_pb2 as mc

from generators.build_options import DEFAULT_ONNX_IR_VERSION, DEFAULT_ONNX_OPSET
from generators.model_config import parse_config
from generators.variant import Variant
from tests import repo_location

_ONNX_ELEM = {"TYPE_FP32": onnx.TensorProto.FLOAT, "TYPE_INT32": onnx.TensorProto.INT32,
              "TYPE_STRING": onnx.TensorProto.STRING, "TYPE_UINT64": onnx.TensorProto.UINT64}
_CONTROL_ELEM = {"fp32_false_true": onnx.TensorProto.FLOAT,
                 "int32_false_true": onnx.TensorProto.INT32,
                 "bool_false_true": onnx.TensorProto.BOOL}


def onnx_models() -> List[Tuple[Variant, pathlib.Path]]:
    """(variant, model dir) of every onnx model in the built repositories' manifest."""
    root = repo_location.implicit_repo(("onnx",))
    manifest = json.loads((root / "manifest.json").read_text())
    return [(Variant.from_spec(m["variant"]), root / m["repository"] / m["name"])
            for m in manifest["models"] if m["variant"]["backend"] == "onnx"]


def state_names(config: mc.ModelConfig) -> Tuple[List[str], List[str]]:
    """(state input names, state output names) of a config, in config order."""
    states = config.sequence_batching.state
    return [s.input_name for s in states], [s.output_name for s in states]


class OnnxGraphTest(unittest.TestCase):
    """The ONNX graph matches its config."""

    @classmethod
    def setUpClass(cls) -> None:
        """Find the onnx models once."""
        cls.models = onnx_models()

    def _expected_types(self, config) -> Dict[str, Tuple[int, List[int]]]:
        """Graph input/output name -> (element type, dims without batch)."""
        data = (_ONNX_ELEM[mc.DataType.Name(config.input[0].data_type)],
                list(config.input[0].dims))
        types = {n: data for n in ("INPUT", "OUTPUT")}
        for state in config.sequence_batching.state:
            state_type = (_ONNX_ELEM[mc.DataType.Name(state.data_type)], list(state.dims))
            types[state.input_name] = types[state.output_name] = state_type
        for control_input in config.sequence_batching.control_input:
            control = control_input.control[0]
            field = next((f for f in _CONTROL_ELEM if len(getattr(control, f))), None)
            elem = _CONTROL_ELEM[field] if field else _ONNX_ELEM[
                mc.DataType.Name(control.data_type)]
            types[control_input.name] = (elem, [1])
        return types

    def _check_value(self, value, elem: int, dims: List[int], batched: bool) -> None:
        """One graph input/output: element type, rank, symbolic batch and -1 dims."""
        tensor = value.type.tensor_type
        self.assertEqual(tensor.elem_type, elem, value.name)
        shape = list(tensor.shape.dim)
        self.assertEqual(len(shape), len(dims) + batched, value.name)
        if batched:
            self.assertTrue(shape[0].dim_param and not shape[0].dim_value, "batch dim symbolic")
        for dim, want in zip(shape[batched:], dims, strict=True):
            if want == -1:
                self.assertTrue(dim.dim_param and not dim.dim_value, f"{value.name} -1 symbolic")
            else:
                self.assertEqual(dim.dim_value, want, value.name)

    def _check_names(self, variant: Variant, model: onnx.ModelProto, config) -> None:
        """Inputs: states + INPUT, START, READY (+ END, CORRID); outputs OUTPUT + states."""
        inputs, outputs = state_names(config)
        self.assertEqual(list(zip(inputs, outputs, strict=True)),
                         [(p.input, p.output) for p in variant.state_pairs])
        names = inputs + ["INPUT", "START", "READY"] + (["END", "CORRID"] * variant.dyna)
        self.assertEqual(sorted(i.name for i in model.graph.input), sorted(names))
        self.assertEqual(sorted(o.name for o in model.graph.output), sorted(["OUTPUT"] + outputs))

    def test_graph_matches_config(self):
        """Inputs, outputs, element types, symbolic dims, pinned versions, full check."""
        self.assertTrue(self.models, "the manifest lists no onnx models")
        for variant, path in self.models:
            with self.subTest(model=f"{path.parent.name}/{path.name}"):
                model = onnx.load(str(path / "1" / "model.onnx"))
                config = parse_config((path / "config.pbtxt").read_text())
                self._check_names(variant, model, config)
                types = self._expected_types(config)
                for value in list(model.graph.input) + list(model.graph.output):
                    self._check_value(value, *types[value.name], batched=variant.max_batch > 0)
                self.assertEqual(model.ir_version, DEFAULT_ONNX_IR_VERSION)
                self.assertEqual({o.domain: o.version for o in model.opset_import},
                                 {"": DEFAULT_ONNX_OPSET})
                onnx.checker.check_model(model, full_check=True)

    def test_multi_state_models_are_built(self):
        """The matrix's multi-state repositories hold 2- and 3-pair onnx models."""
        counts = {len(v.state_pairs) for v, _ in self.models if v.multi_state}
        self.assertEqual(counts, {2, 3})


if __name__ == "__main__":
    unittest.main()
