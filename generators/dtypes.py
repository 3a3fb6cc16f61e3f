"""Per-dtype and per-family tables shared by every builder and the tests.

One row per model dtype says how the data, the state and the sequence
controls are typed in the config and in the model file; one row per family
says which platform/backend serves it and which extra controls it declares.
Unknown keys raise `KeyError` through the tables: nothing returns None.
"""

import dataclasses
from typing import Optional

from generators.variant import Backend, DType, Variant


@dataclasses.dataclass(frozen=True, kw_only=True)
class DTypeInfo:
    """How one model dtype is typed in the config and the model."""

    config_type: str  # ModelConfig DataType name of INPUT/OUTPUT/state
    io_numpy: str  # numpy dtype of the data tensors as the client sends them
    control_field: str  # ModelSequenceBatching.Control *_false_true field
    control_numpy: str  # numpy dtype of the START/END/READY tensors


DTYPES = {
    DType.FLOAT32: DTypeInfo(
        config_type="TYPE_FP32", io_numpy="float32",
        control_field="fp32_false_true", control_numpy="float32",
    ),
    DType.INT32: DTypeInfo(
        config_type="TYPE_INT32", io_numpy="int32",
        control_field="int32_false_true", control_numpy="int32",
    ),
    # Strings: upstream drives the controls of string models with int32.
    DType.OBJECT: DTypeInfo(
        config_type="TYPE_STRING", io_numpy="object",
        control_field="int32_false_true", control_numpy="int32",
    ),
    # Bool models carry int32 data (the QA clients send int32) but bool controls.
    DType.BOOL: DTypeInfo(
        config_type="TYPE_INT32", io_numpy="int32",
        control_field="bool_false_true", control_numpy="bool",
    ),
}


@dataclasses.dataclass(frozen=True, kw_only=True)
class FamilyInfo:
    """How one model family is served and which controls it declares."""

    platform: str = ""  # ModelConfig.platform, empty when `backend` is used
    backend: str = ""  # ModelConfig.backend, empty when `platform` is used
    instance_kind: str = "KIND_GPU"
    model_file: str  # path of the model inside the version directory
    corrid_type: Optional[str] = None  # CONTROL_SEQUENCE_CORRID data type, if declared
    end_control: bool = False  # whether CONTROL_SEQUENCE_END is declared
    updates_state: bool = True  # whether Triton's backend calls StateUpdate
    positional_names: bool = False  # tensor names carry `__<index>` (pytorch backend)


# Python and TensorFlow backends never hand OUTPUT_STATE back to Triton, so
# those models keep each sequence's running state themselves, keyed by CORRID
# and dropped on END.
_FAMILIES = {
    (Backend.ONNX, False): FamilyInfo(
        platform="onnxruntime_onnx", model_file="model.onnx"),
    (Backend.ONNX, True): FamilyInfo(
        platform="onnxruntime_onnx", model_file="model.onnx", instance_kind="KIND_CPU",
        corrid_type="TYPE_UINT64", end_control=True),
    (Backend.PLAN, False): FamilyInfo(platform="tensorrt_plan", model_file="model.plan"),
    (Backend.PLAN, True): FamilyInfo(
        platform="tensorrt_plan", model_file="model.plan",
        corrid_type="TYPE_INT32", end_control=True),
    (Backend.LIBTORCH, False): FamilyInfo(
        platform="pytorch_libtorch", model_file="model.pt", positional_names=True),
    (Backend.PYTHON, False): FamilyInfo(
        backend="python", model_file="model.py", instance_kind="KIND_CPU",
        corrid_type="TYPE_UINT64", end_control=True, updates_state=False),
    (Backend.SAVEDMODEL, False): FamilyInfo(
        platform="tensorflow_savedmodel", model_file="model.savedmodel",
        corrid_type="TYPE_UINT64", end_control=True, updates_state=False),
}


def dtype_info(dtype: DType) -> DTypeInfo:
    """The typing row of a model dtype."""
    return DTYPES[dtype]


def family_info(variant: Variant) -> FamilyInfo:
    """The serving row of a variant's family (backend, dyna or not)."""
    return _FAMILIES[(variant.backend, variant.dyna)]
