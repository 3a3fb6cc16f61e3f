"""Builds each variant's `config.pbtxt` as Triton's real `ModelConfig` proto.

The message comes from `tritonclient.grpc.model_config_pb2` (loaded by
`triton_schema` without the gRPC client) and is written
with `text_format`, never from a string template. The text keeps the
invariants Triton's QA shell harnesses rely on when they edit configs with
sed (CONTRACT.md section 2): top-level fields at column 0, nested fields
indented, `max_batch_size` always present, one field per line.

Tensor names come from `tensor_names`: the plain names (INPUT, START,
INPUT_STATE, ...) for every family except libtorch, whose pytorch backend
maps config names to forward() positions by a `__<index>` suffix.
"""

import dataclasses
import io
import math
import struct
from typing import Dict, Tuple

from google.protobuf import text_format

from generators.dtypes import dtype_info, family_info, pack_elements
from generators.triton_schema import model_config_pb2 as mc
from generators.variant import DType, InitialState, StatePair, Variant

IDLE_MICROSECONDS = 5_000_000
# Dyna batched models: the values upstream's dyna generator writes and its
# harness later rewrites with sed.
OLDEST_CANDIDATES = 6
OLDEST_PREFERRED_BATCH = 4
# Initial value of a numeric file-initialised state (what upstream's harness
# writes); string file states start empty whatever the file holds.
FILE_INITIAL_VALUE = 100


@dataclasses.dataclass(frozen=True, kw_only=True)
class TensorNames:
    """The config's (and the model's) tensor names of one variant."""

    input: str
    output: str
    start: str
    ready: str
    end: str = "END"
    corrid: str = "CORRID"
    states: Tuple[StatePair, ...]  # one per variant.state_pairs, same order


def tensor_names(variant: Variant) -> TensorNames:
    """Tensor names of a variant, following its backend's naming rule.

    Plain families use the names as they are. The pytorch backend (libtorch)
    needs `<name>__<index>`: the index is the forward() argument position of
    an input and the tuple position of an output. Inputs are INPUT__0,
    INPUT_STATE__1, START__2, READY__3 (upstream's names, which its QA clients
    use), a dyna model's END__4 and CORRID__5, and state pair k >= 1 takes the next free positions:
    `<input>__<3 + k>` and `<output>__<1 + k>`, e.g. INPUT_STATE_1__4 ->
    OUTPUT_STATE_1__2 and INPUT_STATE_2__5 -> OUTPUT_STATE_2__3.
    """
    if not family_info(variant).positional_names:
        return TensorNames(input="INPUT", output="OUTPUT", start="START", ready="READY",
                           states=variant.state_pairs)
    first, *others = variant.state_pairs
    states = [StatePair(f"{first.input}__1", f"{first.output}__1")]
    states += [StatePair(f"{pair.input}__{3 + k}", f"{pair.output}__{1 + k}")
               for k, pair in enumerate(others, 1)]
    # A dyna model has one state pair: END and CORRID follow READY.
    return TensorNames(input="INPUT__0", output="OUTPUT__0", start="START__2", ready="READY__3",
                       end="END__4", corrid="CORRID__5", states=tuple(states))


def _control(kind: str, name: str, variant: Variant) -> mc.ModelSequenceBatching.Control:
    control = mc.ModelSequenceBatching.Control(
        kind=mc.ModelSequenceBatching.Control.Kind.Value(kind)
    )
    getattr(control, dtype_info(variant.dtype).control_field).extend([0, 1])
    return control


def _data_type(dtype: DType) -> int:
    return mc.DataType.Value(dtype_info(dtype).config_type)


def _sequence_batching(variant: Variant) -> mc.ModelSequenceBatching:
    family = family_info(variant)
    names = tensor_names(variant)
    data_type = _data_type(variant.state_type)
    batching = mc.ModelSequenceBatching(max_sequence_idle_microseconds=IDLE_MICROSECONDS)
    if variant.dyna and variant.max_batch > 0:
        batching.oldest.max_candidate_sequences = OLDEST_CANDIDATES
        batching.oldest.preferred_batch_size.append(OLDEST_PREFERRED_BATCH)
        batching.oldest.max_queue_delay_microseconds = 0
    controls = [("CONTROL_SEQUENCE_START", names.start)]
    if family.end_control:
        controls.append(("CONTROL_SEQUENCE_END", names.end))
    controls.append(("CONTROL_SEQUENCE_READY", names.ready))
    for kind, name in controls:
        batching.control_input.add(
            name=name, control=[_control(kind, name, variant)]
        )
    if family.corrid_type:
        corrid = mc.ModelSequenceBatching.Control(
            kind=mc.ModelSequenceBatching.Control.CONTROL_SEQUENCE_CORRID,
            data_type=mc.DataType.Value(family.corrid_type),
        )
        batching.control_input.add(name=names.corrid, control=[corrid])
    for pair, named in zip(variant.state_pairs, names.states, strict=True):
        state = batching.state.add(
            input_name=named.input, output_name=named.output, data_type=data_type,
            dims=list(variant.state_layout),
        )
        if variant.same_buffer:
            state.use_same_buffer_for_input_output = True
        if variant.initial_state is not InitialState.NONE:
            initial = state.initial_state.add()
            initial.name = "state init"
            initial.data_type = data_type
            initial.dims.extend(variant.initial_dims)
            if variant.initial_state is InitialState.ZERO:
                initial.zero_data = True
            else:
                initial.data_file = pair.data_file
    return batching


def build_config(variant: Variant) -> mc.ModelConfig:
    """The complete `ModelConfig` of a variant."""
    family = family_info(variant)
    config = mc.ModelConfig(
        name=variant.name,
        platform=family.platform,
        backend=family.backend,
        max_batch_size=variant.max_batch,
    )
    names = tensor_names(variant)
    config.input.add(name=names.input, data_type=_data_type(variant.dtype),
                     dims=list(variant.shape))
    config.output.add(name=names.output, data_type=_data_type(variant.state_type),
                      dims=list(variant.shape))
    config.sequence_batching.CopyFrom(_sequence_batching(variant))
    config.instance_group.add(kind=mc.ModelInstanceGroup.Kind.Value(family.instance_kind))
    return config


# Fields written even when they hold proto3's default (zero), because a
# reader or a harness's sed expects the line: `max_batch_size: 0`,
# `kind: CONTROL_SEQUENCE_START` and the dyna `max_queue_delay_microseconds: 0`.
_ALWAYS_WRITTEN = frozenset({
    "inference.ModelConfig.max_batch_size",
    "inference.ModelSequenceBatching.Control.kind",
    "inference.ModelSequenceBatching.StrategyOldest.max_queue_delay_microseconds",
})


def _field_text(field, value) -> str:
    out = io.StringIO()
    text_format.PrintFieldValue(field, value, out)
    return out.getvalue()


def _write_message(message, out: io.StringIO, indent: int) -> None:
    present = dict(message.ListFields())
    pad = " " * indent
    for field in sorted(message.DESCRIPTOR.fields, key=lambda f: f.number):
        if field in present:
            value = present[field]
        elif field.full_name in _ALWAYS_WRITTEN:
            value = getattr(message, field.name)
        else:
            continue
        values = value if field.is_repeated else [value]
        if field.message_type is not None:
            for element in values:
                out.write(f"{pad}{field.name} {{\n")
                _write_message(element, out, indent + 2)
                out.write(f"{pad}}}\n")
        elif field.is_repeated:
            items = ", ".join(_field_text(field, v) for v in values)
            out.write(f"{pad}{field.name}: [{items}]\n")
        else:
            out.write(f"{pad}{field.name}: {_field_text(field, value)}\n")


def config_text(config: mc.ModelConfig) -> str:
    """Text form of a config: one field per line, nested fields indented.

    Repeated scalars are written in list form (`dims: [-1]`); the fields in
    `_ALWAYS_WRITTEN` appear even when zero. The result parses back into the
    same message with `text_format`.
    """
    out = io.StringIO()
    _write_message(config, out, 0)
    return out.getvalue()


def parse_config(text: str) -> mc.ModelConfig:
    """Parse config text back into a `ModelConfig` (raises on invalid text)."""
    return text_format.Parse(text, mc.ModelConfig())


def file_initial_value(pair_index: int) -> int:
    """Value the file initial state of state pair `pair_index` holds (100, 200, ...)."""
    return FILE_INITIAL_VALUE * (pair_index + 1)


def initial_state_files(variant: Variant) -> Dict[str, bytes]:
    """Contents of `initial_state/<file>` per state pair of a file-initialised variant.

    Numeric states: pair k holds `file_initial_value(k)` in every element,
    raw, little-endian and row-major, in the state's dtype (a BOOLEAN state:
    true); with `initial_state_dims` (one pair),
    element i holds `file_initial_value(0) * (i + 1)` (100, 200, 300, ...),
    so a server that keeps only the first value answers differently (server
    issue 6538). String states: one empty BYTES element
    per state element (a 4-byte zero length each). Triton core zeroes every
    string state after copying the file in (SetStringDataToZero, which fails
    the sequence unless the size is a multiple of 4), so a string state always
    starts as empty strings; this file is exactly what that zeroing leaves.
    """
    count = math.prod(variant.initial_dims)
    files = {}
    for index, pair in enumerate(variant.state_pairs):
        if variant.state_type is DType.OBJECT:
            files[pair.data_file] = struct.pack("<I", 0) * count
            continue
        if variant.state_type is DType.BOOLEAN:
            files[pair.data_file] = pack_elements(DType.BOOLEAN, [True] * count)
            continue
        steps = range(1, count + 1) if variant.initial_state_dims else [1] * count
        files[pair.data_file] = pack_elements(
            variant.state_type, [file_initial_value(index) * step for step in steps])
    return files
