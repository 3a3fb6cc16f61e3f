"""Generator-wide options that are not part of a variant (ONNX versions)."""

import dataclasses

# Triton 24.10 (server 2.51) ships ONNX Runtime 1.19, which accepts at most
# IR 10 / opset 21; IR 8 / opset 17 also loads on much older releases.
DEFAULT_ONNX_OPSET = 17
DEFAULT_ONNX_IR_VERSION = 8
MODEL_VERSION = 1


@dataclasses.dataclass(frozen=True, kw_only=True)
class BuildOptions:
    """Options every builder receives; defaults match the Bazel build."""

    onnx_opset: int = DEFAULT_ONNX_OPSET
    onnx_ir_version: int = DEFAULT_ONNX_IR_VERSION
