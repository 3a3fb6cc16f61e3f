"""ONNX opsets are checked against the operators our graphs use (generators/build_options.py).

The operators come from the onnx builder itself (`op_types`), and the
opset each first appears in from onnx's operator registry (`onnx.defs`), so
neither is a hand-kept table. The tests prove the operator list covers every
graph the matrix builds, that the check refuses exactly the opsets below
the newest operator's (opset 8 lacks Where), and that every opset it
accepts builds and checks every ONNX model of the matrix. A bfloat16 graph
(none in the matrix: Triton's r24.10 onnxruntime backend refuses TYPE_BF16,
generators/served_types.py) needs opset 13, whose Cast first carries
bfloat16; the builder refuses it below that.
"""

import unittest
from unittest import mock

import onnx
from onnx import helper

from generators import served_types
from generators.backends.onnx import onnx_builder
from generators.build_options import BuildOptions, first_opsets
from generators.errors import OptionError
from generators.matrix import expand
from generators.variant import Backend, DType, Variant

ONNX_VARIANTS = [e.variant for e in expand() if e.variant.backend is Backend.ONNX]
# Released default-domain opsets of the pinned onnx -> the IR version each needs.
MIN_IR = {v: ir for (domain, v), ir in helper.OP_SET_ID_VERSION_MAP.items() if domain == "ai.onnx"}


class OperatorListTest(unittest.TestCase):
    """`op_types` is what the graphs hold; the registry dates each operator."""

    def test_covers_every_graph_of_the_matrix(self):
        used = {node.op_type for variant in ONNX_VARIANTS
                for node in onnx_builder.build_model(variant, BuildOptions()).graph.node}
        self.assertEqual(used, onnx_builder.op_types())

    def test_where_is_the_newest(self):
        first = first_opsets(onnx_builder.op_types())
        self.assertEqual(first["Where"], 9)
        self.assertEqual(max(first.values()), 9, first)
        self.assertNotIn(0, first.values(), "every operator is in onnx's registry")


class OpsetCheckTest(unittest.TestCase):
    """BuildOptions refuses an opset without our operators, before anything is built."""

    def test_opset_8_names_where_and_the_fix(self):
        with self.assertRaisesRegex(
                OptionError, r"^invalid option: onnx_opset 8 is older than the operators our ONNX"
                             r" graphs use: Where \(opset 9 on\), per onnx's operator registry"
                             r" \(onnx.defs\); pass onnx_opset 9 or newer, or 0 for the"
                             r" generator's choice \(17\)$"):
            BuildOptions(onnx_opset=8)

    def test_every_accepted_opset_builds_every_model(self):
        """Refused below 9; from 9 to the newest the pinned onnx knows, onnx's checker agrees."""
        accepted = []
        for opset, ir_version in sorted(MIN_IR.items()):
            try:
                options = BuildOptions(onnx_opset=opset, onnx_ir_version=max(ir_version, 3))
            except OptionError as err:
                self.assertIn("older than the operators our ONNX graphs use", str(err))
                continue
            accepted.append(opset)
            for variant in ONNX_VARIANTS:
                with self.subTest(opset=opset, model=variant.name):
                    model = onnx_builder.build_model(variant, options)
                    onnx.checker.check_model(model, full_check=True)
        self.assertEqual(accepted, list(range(9, max(MIN_IR) + 1)))

    def test_bfloat16_needs_opset_13(self):
        """Opset 12 is refused for a bfloat16 graph, naming the rule; 13 passes the full check."""
        with mock.patch.dict(served_types.EXCLUSIONS, clear=True):
            variant = Variant(backend=Backend.ONNX, dtype=DType.BFLOAT16, shape=(1,), max_batch=0)
        with self.assertRaisesRegex(
                OptionError, r"^invalid option: onnx_opset 12 cannot build"
                             r" onnx_nobatch_sequence_bfloat16: its bfloat16 tensors need Cast"
                             r" from opset 13 on \(onnx's operator registry\); pass onnx_opset 13"
                             r" or newer$"):
            onnx_builder.build_model(variant, BuildOptions(onnx_opset=12))
        model = onnx_builder.build_model(variant, BuildOptions(onnx_opset=13))
        onnx.checker.check_model(model, full_check=True)

    def test_an_operator_the_registry_does_not_hold(self):
        with mock.patch.object(onnx_builder, "op_types",
                               return_value=frozenset({"Where", "NotAnOnnxOperator"})):
            with self.assertRaisesRegex(OptionError, "uses NotAnOnnxOperator, which the pinned"
                                                     r" onnx's operator registry \(onnx.defs\)"):
                BuildOptions(onnx_opset=13)


if __name__ == "__main__":
    unittest.main()
