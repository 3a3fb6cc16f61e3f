"""Per-dtype and per-family tables shared by every builder and the tests.

One row per model dtype says how the data, the state and the sequence
controls are typed in the config and in the model file; one row per family
says which platform/backend serves it and which extra controls it declares.
Unknown keys raise `KeyError` through the tables: nothing returns None.
"""

import dataclasses
import struct
from typing import Optional

from generators.variant import Backend, DType, Variant


@dataclasses.dataclass(frozen=True, kw_only=True)
class DTypeInfo:
    """How one model dtype is typed in the config and the model."""

    config_type: str  # ModelConfig DataType name of INPUT/OUTPUT/state
    io_numpy: str  # numpy dtype of the data tensors as the client sends them (ml_dtypes' for bfloat16)
    control_field: str  # ModelSequenceBatching.Control *_false_true field
    control_numpy: str  # numpy dtype of the START/END/READY tensors
    # struct format of one element in a state's data file ("" for strings;
    # bfloat16 is packed as the high half of float32's, see `pack_elements`).
    struct_format: str = ""


def _coverage(config_type: str, io_numpy: str, struct_format: str) -> "DTypeInfo":
    """A state-coverage dtype: its data typed as itself, driven with int32 controls."""
    return DTypeInfo(config_type=config_type, io_numpy=io_numpy, control_field="int32_false_true",
                     control_numpy="int32", struct_format=struct_format)


DTYPES = {
    DType.FLOAT32: DTypeInfo(
        config_type="TYPE_FP32", io_numpy="float32",
        control_field="fp32_false_true", control_numpy="float32", struct_format="<f",
    ),
    DType.INT32: DTypeInfo(
        config_type="TYPE_INT32", io_numpy="int32",
        control_field="int32_false_true", control_numpy="int32", struct_format="<i",
    ),
    # Strings: upstream drives the controls of string models with int32.
    DType.OBJECT: DTypeInfo(
        config_type="TYPE_STRING", io_numpy="object",
        control_field="int32_false_true", control_numpy="int32",
    ),
    # Bool models carry int32 data (the QA clients send int32) but bool controls.
    DType.BOOL: DTypeInfo(
        config_type="TYPE_INT32", io_numpy="int32",
        control_field="bool_false_true", control_numpy="bool", struct_format="<i",
    ),
    # A real TYPE_BOOL state (running XOR), driven with bool controls.
    DType.BOOLEAN: DTypeInfo(
        config_type="TYPE_BOOL", io_numpy="bool",
        control_field="bool_false_true", control_numpy="bool", struct_format="<?",
    ),
    DType.INT8: _coverage("TYPE_INT8", "int8", "<b"),
    DType.INT16: _coverage("TYPE_INT16", "int16", "<h"),
    DType.INT64: _coverage("TYPE_INT64", "int64", "<q"),
    DType.UINT8: _coverage("TYPE_UINT8", "uint8", "<B"),
    DType.UINT16: _coverage("TYPE_UINT16", "uint16", "<H"),
    DType.UINT32: _coverage("TYPE_UINT32", "uint32", "<I"),
    DType.UINT64: _coverage("TYPE_UINT64", "uint64", "<Q"),
    DType.FLOAT16: _coverage("TYPE_FP16", "float16", "<e"),
    # numpy has no bfloat16: ml_dtypes' `bfloat16` (a tritonclient dependency)
    # names it, and the pinned tritonclient sends BF16 only from such arrays.
    DType.BFLOAT16: _coverage("TYPE_BF16", "bfloat16", "bf16"),
    DType.FLOAT64: _coverage("TYPE_FP64", "float64", "<d"),
}


def pack_elements(dtype: DType, values) -> bytes:
    """Raw little-endian bytes of numeric `values` as Triton holds a `dtype` tensor.

    BF16 is the high 16 bits of the float32 (exact for integers up to 256).
    """
    info = DTYPES[dtype]
    if not info.struct_format:
        raise KeyError(f"dtype {dtype.value} has no fixed-size elements")
    if info.struct_format == "bf16":
        return b"".join(struct.pack("<f", float(v))[2:] for v in values)
    return b"".join(struct.pack(info.struct_format, v) for v in values)


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
    # Dyna libtorch models add END__4 and CORRID__5 (INT64: torch has no uint64).
    (Backend.LIBTORCH, True): FamilyInfo(
        platform="pytorch_libtorch", model_file="model.pt", positional_names=True,
        corrid_type="TYPE_INT64", end_control=True),
    (Backend.PYTHON, False): FamilyInfo(
        backend="python", model_file="model.py", instance_kind="KIND_CPU",
        corrid_type="TYPE_UINT64", end_control=True, updates_state=False),
    (Backend.SAVEDMODEL, False): FamilyInfo(
        platform="tensorflow_savedmodel", model_file="model.savedmodel",
        corrid_type="TYPE_UINT64", end_control=True, updates_state=False),
}
# The python and savedmodel families already declare END and CORRID: their
# dyna models differ only in the strategy.
_FAMILIES[(Backend.PYTHON, True)] = _FAMILIES[(Backend.PYTHON, False)]
_FAMILIES[(Backend.SAVEDMODEL, True)] = _FAMILIES[(Backend.SAVEDMODEL, False)]


def dtype_info(dtype: DType) -> DTypeInfo:
    """The typing row of a model dtype."""
    return DTYPES[dtype]


def family_info(variant: Variant) -> FamilyInfo:
    """The serving row of a variant's family (backend, dyna or not)."""
    return _FAMILIES[(variant.backend, variant.dyna)]
