"""The state types a family's Triton backend cannot serve: the one exclusion table.

Each entry was measured, never guessed: a model of that family and dtype was
built, served by tritonserver 2.51 with Triton's own r24.10 backend
(`../shared/triton/backends`) and refused; the entry holds the server's own
message. The matrix expansion leaves these (family, dtype) pairs out
(generators/variant.py `backend_builds`), an explicit spec naming one is
refused with the message, and docs/models.md ("Every state type") renders
the table per family. Standard library only: the matrix expansion that
Bazel's repository rule runs imports it with a bare interpreter.
"""

from typing import Dict, Optional, Tuple

# (family, dtype) -> what the real server said when asked to serve it.
EXCLUSIONS: Dict[Tuple[str, str], str] = {
    ("onnx", "bfloat16"): (
        "failed to load 'onnx_sequence_bfloat16' version 1: Internal: unsupported datatype"
        " TYPE_BF16 for input 'INPUT' for model 'onnx_sequence_bfloat16' (measured:"
        " tritonserver 2.51, Triton's r24.10 onnxruntime backend)"),
    ("savedmodel", "bfloat16"): (
        "failed to load 'savedmodel_sequence_bfloat16' version 1: Invalid argument: unsupported"
        " datatype 'TYPE_BF16' for tensor 'INPUT' for model 'savedmodel_sequence_bfloat16'"
        " (measured: tritonserver 2.51, Triton's r24.10 tensorflow backend)"),
    ("libtorch", "bfloat16"): (
        "failed to load 'libtorch_sequence_bfloat16' version 1: Internal: unsupported datatype"
        " TYPE_BF16 for input 'INPUT__0' for model 'libtorch_sequence_bfloat16' (measured:"
        " tritonserver 2.51, Triton's r24.10 pytorch backend)"),
    ("libtorch", "uint16"): (
        "failed to load 'libtorch_sequence_uint16' version 1: Internal: unsupported datatype"
        " TYPE_UINT16 for input 'INPUT__0' for model 'libtorch_sequence_uint16' (measured:"
        " tritonserver 2.51, Triton's r24.10 pytorch backend)"),
    ("libtorch", "uint32"): (
        "failed to load 'libtorch_sequence_uint32' version 1: Internal: unsupported datatype"
        " TYPE_UINT32 for input 'INPUT__0' for model 'libtorch_sequence_uint32' (measured:"
        " tritonserver 2.51, Triton's r24.10 pytorch backend)"),
    ("libtorch", "uint64"): (
        "failed to load 'libtorch_sequence_uint64' version 1: Internal: unsupported datatype"
        " TYPE_UINT64 for input 'INPUT__0' for model 'libtorch_sequence_uint64' (measured:"
        " tritonserver 2.51, Triton's r24.10 pytorch backend)"),
}


def exclusion(family: str, dtype: str) -> Optional[str]:
    """The measured reason `family` cannot serve `dtype`, or None when it can."""
    return EXCLUSIONS.get((family, dtype))
