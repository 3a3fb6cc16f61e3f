"""Checks every built `config.pbtxt` against CONTRACT.md section 2 and the harnesses' sed edits.

For each model in the built repositories (tests.repo_location): the config
parses into Triton's `ModelConfig` and round-trips; its fields match the
contract's per-family table; its text keeps the invariants upstream's shell
harnesses rely on; there is one `state` entry per state pair, with distinct
names, and a file initial state gives pair k its own data file holding
100 * (k + 1) per element (strings: one empty BYTES element each, which is
what Triton core's zeroing of string states leaves). Every data file has a
size Triton accepts (DataFileSizeTest), computed here from dims and dtype.
Then the harnesses' own sed edits (instance count, `direct` block, `_half`
rename, zero -> file initial state, dyna oldest rewrites, `_output` copies)
are applied to a copy of the text, which must still parse with exactly the
intended effect.
"""

import json
import math
import pathlib
import re
import struct
import unittest
from typing import Dict, List, Tuple

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from generators.model_config import config_text, parse_config
from generators.variant import Backend, DType, InitialState, Variant
from tests import repo_location
from verification import triton_sim

# CONTRACT.md section 2: dtype -> (I/O and state data_type, control *_false_true field).
# The state-coverage dtypes are of their own Triton type (BOOLEAN: TYPE_BOOL,
# with bool controls; the others with int32 controls).
DTYPE_TYPES = {
    DType.FLOAT32: ("TYPE_FP32", "fp32_false_true"),
    DType.INT32: ("TYPE_INT32", "int32_false_true"),
    DType.OBJECT: ("TYPE_STRING", "int32_false_true"),
    DType.BOOL: ("TYPE_INT32", "bool_false_true"),
    DType.BOOLEAN: ("TYPE_BOOL", "bool_false_true"),
    DType.INT8: ("TYPE_INT8", "int32_false_true"),
    DType.INT16: ("TYPE_INT16", "int32_false_true"),
    DType.INT64: ("TYPE_INT64", "int32_false_true"),
    DType.UINT8: ("TYPE_UINT8", "int32_false_true"),
    DType.UINT16: ("TYPE_UINT16", "int32_false_true"),
    DType.UINT32: ("TYPE_UINT32", "int32_false_true"),
    DType.UINT64: ("TYPE_UINT64", "int32_false_true"),
    DType.FLOAT16: ("TYPE_FP16", "int32_false_true"),
    DType.BFLOAT16: ("TYPE_BF16", "int32_false_true"),
    DType.FLOAT64: ("TYPE_FP64", "int32_false_true"),
}
# (backend, dyna) -> (platform, backend field, instance kind, CORRID type or None).
# onnx and plan rows are CONTRACT.md's; python and savedmodel are this
# project's extra families, which carry state themselves and need END/CORRID.
FAMILIES = {
    (Backend.ONNX, False): ("onnxruntime_onnx", "", "KIND_GPU", None),
    (Backend.ONNX, True): ("onnxruntime_onnx", "", "KIND_CPU", "TYPE_UINT64"),
    (Backend.PLAN, False): ("tensorrt_plan", "", "KIND_GPU", None),
    (Backend.PLAN, True): ("tensorrt_plan", "", "KIND_GPU", "TYPE_INT32"),
    (Backend.PYTHON, False): ("", "python", "KIND_CPU", "TYPE_UINT64"),
    (Backend.PYTHON, True): ("", "python", "KIND_CPU", "TYPE_UINT64"),
    (Backend.SAVEDMODEL, False): ("tensorflow_savedmodel", "", "KIND_GPU", "TYPE_UINT64"),
    (Backend.SAVEDMODEL, True): ("tensorflow_savedmodel", "", "KIND_GPU", "TYPE_UINT64"),
    (Backend.LIBTORCH, False): ("pytorch_libtorch", "", "KIND_GPU", None),
    (Backend.LIBTORCH, True): ("pytorch_libtorch", "", "KIND_GPU", "TYPE_INT64"),
}
# Triton's pytorch backend maps config names to forward() positions by a
# `__<index>` suffix (reference section 2.3; upstream's QA clients use these);
# dyna libtorch models add END__4 and CORRID__5.
POSITIONAL = {"INPUT": "INPUT__0", "OUTPUT": "OUTPUT__0", "START": "START__2",
              "READY": "READY__3", "END": "END__4", "CORRID": "CORRID__5"}
IDLE_MICROSECONDS = 5000000
FILE_VALUE = 100
DATA_FILE = "input_state_data"
# 100 (TYPE_BOOL: true) as one element of each state-coverage type, little-endian
# (TYPE_BF16: float32 100.0's upper half, 0x42c8).
HUNDRED = {"TYPE_BOOL": b"\x01", "TYPE_INT8": b"\x64", "TYPE_INT16": b"\x64\x00",
           "TYPE_INT64": b"\x64" + b"\x00" * 7, "TYPE_UINT8": b"\x64", "TYPE_UINT16": b"\x64\x00",
           "TYPE_UINT32": b"\x64\x00\x00\x00", "TYPE_UINT64": b"\x64" + b"\x00" * 7,
           "TYPE_FP16": b"\x40\x56", "TYPE_BF16": b"\xc8\x42",
           "TYPE_FP64": b"\x00" * 6 + b"\x59\x40"}
DEFAULT_STATE = ("INPUT_STATE", "OUTPUT_STATE")
# Names a state tensor may not take: the data tensors and the controls.
NOT_STATE_NAMES = frozenset({"INPUT", "OUTPUT", "START", "END", "READY", "CORRID"})
Model = Tuple[Variant, pathlib.Path]


def sed(pattern: str, replacement: str, text: str) -> str:
    """`sed -i "s/pattern/replacement/"` applied line by line (first match per line)."""
    return "".join(re.sub(pattern, replacement, line, count=1)
                   for line in text.splitlines(keepends=True))


def tensor(variant: Variant, name: str) -> str:
    """The config name of data/control tensor `name` for the variant's family."""
    return POSITIONAL[name] if variant.backend is Backend.LIBTORCH else name


def state_names(variant: Variant) -> List[Tuple[str, str]]:
    """Config (input, output) names per state pair, in pair order.

    libtorch: pair 0 at input position 1 and output 1, pair k >= 1 at input
    3 + k and output 1 + k (after START__2 and READY__3).
    """
    if variant.backend is not Backend.LIBTORCH:
        return [(p.input, p.output) for p in variant.state_pairs]
    return [(f"{p.input}__{1 if k == 0 else 3 + k}", f"{p.output}__{k + 1}")
            for k, p in enumerate(variant.state_pairs)]


def lines(pattern: str, text: str) -> List[str]:
    """The lines of text that `pattern` matches (like grep)."""
    return [line for line in text.splitlines() if re.search(pattern, line)]


def _load() -> Tuple[pathlib.Path, List[Model]]:
    """The repositories' root and (variant, model dir) of every model in its manifest."""
    root = repo_location.implicit_repo()
    manifest = json.loads((root / "manifest.json").read_text())
    return root, [(Variant.from_spec(m["variant"]), root / m["repository"] / m["name"])
                  for m in manifest["models"]]


class ConfigTestCase(unittest.TestCase):
    """Shared set-up: every model of the manifest with its config text."""

    @classmethod
    def setUpClass(cls) -> None:
        """Read the manifest and every config once."""
        cls.root, cls.models = _load()
        cls.texts = {path: (path / "config.pbtxt").read_text() for _, path in cls.models}

    def each(self):
        """(variant, path, text, parsed config) per model; the caller opens a subTest."""
        return [(v, p, self.texts[p], parse_config(self.texts[p])) for v, p in self.models]

    def label(self, path: pathlib.Path) -> str:
        """Repository/model, for subtest names."""
        return f"{path.parent.name}/{path.name}"


class ConfigContentTest(ConfigTestCase):
    """Parsed fields and text layout of each generated config."""

    def test_every_config_is_in_the_manifest(self):
        """The tree holds exactly the manifest's models, each with a config."""
        found = sorted(p.parent for p in self.root.glob("*/*/config.pbtxt"))
        self.assertEqual(found, sorted(path for _, path in self.models))
        self.assertTrue(found, "no config.pbtxt found")

    def test_round_trip(self):
        """Text -> ModelConfig -> text is the identity, also through text_format."""
        for _, path, text, config in self.each():
            with self.subTest(model=self.label(path)):
                self.assertEqual(config_text(config), text)
                self.assertEqual(parse_config(text_format.MessageToString(config)), config)

    def test_family_fields(self):
        """Name, platform, batch size, I/O, instance group and idle time per the contract."""
        for variant, path, _, config in self.each():
            with self.subTest(model=self.label(path)):
                platform, backend, kind, _ = FAMILIES[(variant.backend, variant.dyna)]
                self.assertEqual((config.name, config.platform, config.backend),
                                 (path.name, platform, backend))
                self.assertEqual(config.max_batch_size, variant.max_batch)
                # INPUT of the dtype, OUTPUT of the state's (a wider state's, when given).
                for tensors, name, dtype in ((config.input, "INPUT", variant.dtype),
                                             (config.output, "OUTPUT", variant.state_type)):
                    data_type = mc.DataType.Value(DTYPE_TYPES[dtype][0])
                    self.assertEqual([(t.name, t.data_type, list(t.dims)) for t in tensors],
                                     [(tensor(variant, name), data_type, list(variant.shape))])
                self.assertEqual(len(config.instance_group), 1)
                group = config.instance_group[0]
                self.assertEqual(mc.ModelInstanceGroup.Kind.Name(group.kind), kind)
                self.assertEqual(group.count, 0)
                batching = config.sequence_batching
                self.assertEqual(batching.max_sequence_idle_microseconds, IDLE_MICROSECONDS)

    def _controls(self, variant: Variant) -> Dict[str, Tuple[str, str]]:
        """Control name -> (kind, *_false_true field or CORRID data type) per the contract."""
        _, _, _, corrid = FAMILIES[(variant.backend, variant.dyna)]
        field = DTYPE_TYPES[variant.dtype][1]
        controls = {tensor(variant, "START"): ("CONTROL_SEQUENCE_START", field),
                    tensor(variant, "READY"): ("CONTROL_SEQUENCE_READY", field)}
        if corrid:
            controls[tensor(variant, "END")] = ("CONTROL_SEQUENCE_END", field)
            controls[tensor(variant, "CORRID")] = ("CONTROL_SEQUENCE_CORRID", corrid)
        return controls

    def test_controls(self):
        """START/READY (+END/CORRID) with [0, 1] in the dtype's *_false_true field."""
        for variant, path, _, config in self.each():
            with self.subTest(model=self.label(path)):
                got = {}
                for control_input in config.sequence_batching.control_input:
                    self.assertEqual(len(control_input.control), 1)
                    control = control_input.control[0]
                    kind = mc.ModelSequenceBatching.Control.Kind.Name(control.kind)
                    if kind == "CONTROL_SEQUENCE_CORRID":
                        got[control_input.name] = (kind, mc.DataType.Name(control.data_type))
                        continue
                    fields = [f for f in ("int32_false_true", "fp32_false_true",
                                          "bool_false_true") if len(getattr(control, f))]
                    self.assertEqual(len(fields), 1)
                    self.assertEqual(list(getattr(control, fields[0])), [0, 1])
                    got[control_input.name] = (kind, fields[0])
                self.assertEqual(got, self._controls(variant))

    def test_state(self):
        """One state per pair, in pair order: names, type, dims, buffer option; initial states.

        The state has the state type (a wider state's when given) and INPUT's
        dims unless the variant gives its own ([2] or []);
        use_same_buffer_for_input_output is set exactly on the single-buffer
        variants.
        """
        for variant, path, _, config in self.each():
            with self.subTest(model=self.label(path)):
                data_type = mc.DataType.Value(DTYPE_TYPES[variant.state_type][0])
                states = config.sequence_batching.state
                names = [(s.input_name, s.output_name) for s in states]
                self.assertEqual(names, state_names(variant))
                self._check_state_names(variant, names, config)
                dims = list(config.input[0].dims) if variant.state_dims is None \
                    else list(variant.state_dims)
                for state in states:
                    self.assertEqual(state.data_type, data_type, state.input_name)
                    self.assertEqual(list(state.dims), dims)
                    self.assertEqual(state.use_same_buffer_for_input_output, variant.same_buffer)
                    self.assertFalse(state.use_growable_memory)
                self._check_initial(variant, path, states)

    def _check_state_names(self, variant: Variant, names, config) -> None:
        """Default models: INPUT_STATE -> OUTPUT_STATE (libtorch: with `__1`).

        Every name is distinct, not a data or control name and not an output.
        """
        default = DEFAULT_STATE
        if variant.backend is Backend.LIBTORCH:
            default = ("INPUT_STATE__1", "OUTPUT_STATE__1")
        if not variant.multi_state:
            self.assertEqual(names, [default])
        else:
            self.assertGreater(len(names), 1)
            if not variant.crossed_state_order:  # the order repository renames every pair
                self.assertEqual(names[0], default, "pair 0 keeps the default names")
        flat = [name for pair in names for name in pair]
        self.assertEqual(len(set(flat)), len(flat), f"state names repeat: {flat}")
        reserved = NOT_STATE_NAMES | {tensor(variant, n) for n in POSITIONAL}
        self.assertEqual(set(flat) & reserved, set())
        self.assertEqual(set(flat) & {o.name for o in config.output}, set())

    def _check_initial(self, variant: Variant, path: pathlib.Path, states) -> None:
        """No initial state, zero_data, or data_file plus its data file, per state."""
        if variant.initial_state is InitialState.NONE:
            self.assertEqual([len(s.initial_state) for s in states], [0] * len(states))
            self.assertFalse((path / "initial_state").exists())
            return
        files = []
        for index, state in enumerate(states):
            self.assertEqual(len(state.initial_state), 1)
            initial = state.initial_state[0]
            self.assertEqual((initial.name, initial.data_type), ("state init", state.data_type))
            # The dims reproducers (server issue 6538) give a variable state concrete dims [3].
            self.assertEqual(list(initial.dims), list(variant.initial_state_dims)
                             or [1 if d == -1 else d for d in state.dims])
            if variant.initial_state is InitialState.ZERO:
                self.assertEqual((initial.zero_data, initial.data_file), (True, ""))
                continue
            # <input name, lower case>_data: upstream's harness name for pair 0
            # (libtorch: the name before its `__<index>`).
            data_file = f"{state.input_name.split('__')[0].lower()}_data"
            self.assertTrue(index or data_file == DATA_FILE, data_file)
            self.assertEqual((initial.zero_data, initial.data_file), (False, data_file))
            values = ([FILE_VALUE * (i + 1) for i in range(math.prod(initial.dims))]
                      if variant.initial_state_dims else None)  # 100, 200, 300: distinct
            self._check_data_file(path / "initial_state" / data_file, initial,
                                  FILE_VALUE * (index + 1), values)
            files.append(data_file)
        if files:
            self.assertEqual(sorted(f.name for f in (path / "initial_state").iterdir()),
                             sorted(files))

    def _check_data_file(self, data_file: pathlib.Path, initial, value: int,
                         values=None) -> None:
        """`value` per element (or `values`) in the state's type; strings: one empty BYTES element each.

        The state-coverage types' files hold 100 (TYPE_BOOL: true) in every
        element, compared with HUNDRED's literal bytes.
        """
        blob, count = data_file.read_bytes(), math.prod(initial.dims)
        type_name = mc.DataType.Name(initial.data_type)
        if type_name == "TYPE_STRING":
            self.assertEqual(triton_sim.parse_bytes_tensor(blob), [b""] * count)
            return
        if type_name not in ("TYPE_INT32", "TYPE_FP32"):
            self.assertEqual((value, values), (FILE_VALUE, None), "one pair, 100 per element")
            self.assertEqual(blob, HUNDRED[type_name] * count)
            return
        fmt = {"TYPE_INT32": "i", "TYPE_FP32": "f"}[type_name]
        self.assertEqual(len(blob), 4 * count)
        self.assertEqual(list(struct.unpack(f"<{count}{fmt}", blob)), values or [value] * count)

    def test_strategy(self):
        """Direct models name no strategy; batched dyna carry exactly upstream's oldest block."""
        for variant, path, text, config in self.each():
            with self.subTest(model=self.label(path)):
                batching = config.sequence_batching
                if not (variant.dyna and variant.max_batch):
                    self.assertIsNone(batching.WhichOneof("strategy_choice"))
                    self.assertEqual(lines(r"\b(direct|oldest)\b", text), [])
                    continue
                self.assertEqual(batching.WhichOneof("strategy_choice"), "oldest")
                oldest = batching.oldest
                self.assertEqual((oldest.max_candidate_sequences, list(oldest.preferred_batch_size),
                                  oldest.max_queue_delay_microseconds), (6, [4], 0))
                self.assertEqual(len(oldest.ListFields()), 2)  # the zero delay is text-only
                self.assertEqual(lines(r"max_candidate_sequences", text),
                                 ["    max_candidate_sequences: 6"])
                self.assertEqual(lines(r"max_queue_delay_microseconds", text),
                                 ["    max_queue_delay_microseconds: 0"])

    def test_text_invariants(self):
        """Column-0 name and max_batch_size, indented nested names, sed anchors."""
        for variant, path, text, _ in self.each():
            with self.subTest(model=self.label(path)):
                self.assertEqual(lines(r"^name:", text), [f'name: "{path.name}"'])
                self.assertEqual(lines(r"max_batch_size:", text),
                                 [f"max_batch_size: {variant.max_batch}"])
                self.assertEqual(text.count(path.name), 1, "the model name appears once")
                self.assertEqual(lines(r"sequence_batching", text), ["sequence_batching {"])
                self.assertEqual(lines(r"max_sequence_idle_microseconds", text),
                                 ["  max_sequence_idle_microseconds: 5000000"])
                kind = FAMILIES[(variant.backend, variant.dyna)][2]
                self.assertEqual(lines(r"KIND_", text), [f"  kind: {kind}"])
                self.assertEqual(lines(r"^\s*count:", text), [])
                zeros = len(variant.state_pairs) * (variant.initial_state is InitialState.ZERO)
                self.assertEqual(lines(r"zero_data", text), ["      zero_data: true"] * zeros)


# Bytes per element of the numeric state types Triton reads raw from a data file.
ELEMENT_BYTES = {"TYPE_BOOL": 1, "TYPE_INT8": 1, "TYPE_INT16": 2, "TYPE_INT32": 4,
                 "TYPE_INT64": 8, "TYPE_UINT8": 1, "TYPE_UINT16": 2, "TYPE_UINT32": 4,
                 "TYPE_UINT64": 8, "TYPE_FP16": 2, "TYPE_BF16": 2, "TYPE_FP32": 4,
                 "TYPE_FP64": 8}


class DataFileSizeTest(ConfigTestCase):
    """No `initial_state` names a data file whose size Triton would reject."""

    def test_data_file_sizes(self):
        """Numeric: elements x element size. Strings: whole 4-byte lengths, one per element.

        Triton copies a string file whatever its size, then zeroes the buffer
        and fails the sequence unless the size is a multiple of 4; the zeroed
        buffer must still hold one (empty) BYTES element per state element.
        """
        checked = 0
        for _, path, _, config in self.each():
            for state in config.sequence_batching.state:
                for initial in state.initial_state:
                    if not initial.data_file:
                        continue
                    with self.subTest(model=self.label(path), state=state.input_name):
                        self._check_size(path / "initial_state" / initial.data_file, state,
                                         initial)
                        checked += 1
        self.assertGreater(checked, 0, "no data_file initial state in the built tree")

    def _check_size(self, data_file: pathlib.Path, state, initial) -> None:
        """The initial state's own dims set the size (a [-1] state's start shape is [1])."""
        size = data_file.stat().st_size
        self.assertEqual(len(initial.dims), len(state.dims))
        count = math.prod(initial.dims)
        type_name = mc.DataType.Name(state.data_type)
        if type_name != "TYPE_STRING":
            self.assertEqual(size, count * ELEMENT_BYTES[type_name], type_name)
            return
        self.assertEqual(size % 4, 0, "core: total byte size must be a multiple of 4")
        self.assertEqual(len(triton_sim.parse_bytes_tensor(data_file.read_bytes())), count)
        self.assertEqual(len(triton_sim.parse_bytes_tensor(bytes(size))), count, "once zeroed")


class HarnessEditTest(ConfigTestCase):
    """Upstream's sed edits of a config copy parse and do what the harness intends."""

    def _edited(self, text: str, *edits: Tuple[str, str]) -> mc.ModelConfig:
        """Apply sed edits in turn (each must match a line) and parse the result."""
        for pattern, replacement in edits:
            edited = sed(pattern, replacement, text)
            self.assertTrue(edited != text, f"sed s/{pattern}/ matched no line")
            text = edited
        return parse_config(text)

    def test_instance_count_and_batch_size(self):
        """`count: 2` after the kind line and a new max_batch_size (SBS:299-301)."""
        for _, path, text, config in self.each():
            with self.subTest(model=self.label(path)):
                edited = self._edited(text, (r"kind: (KIND_\w+)", r"kind: \1\ncount: 2"),
                                      (r"^max_batch_size:.*", "max_batch_size: 4"))
                self.assertEqual((edited.instance_group[0].count, edited.max_batch_size), (2, 4))
                edited.instance_group[0].count = 0
                edited.max_batch_size = config.max_batch_size
                self.assertEqual(edited, config)

    def test_direct_block_and_rename(self):
        """The queue-delay copies: a direct block after `sequence_batching {`, name `_half`."""
        for variant, path, text, config in self.each():
            if variant.dyna and variant.max_batch:
                continue  # already has a strategy; upstream never edits these this way
            with self.subTest(model=self.label(path)):
                block = ("sequence_batching {\ndirect { max_queue_delay_microseconds: 3000000"
                         " minimum_slot_utilization: 0 }")
                edited = self._edited(
                    text, (r"sequence_batching \{", block),
                    (r"minimum_slot_utilization: 0", "minimum_slot_utilization: 0.5"),
                    (r"^name:.*", f'name: "{path.name}_half"'))
                direct = edited.sequence_batching.direct
                self.assertEqual(edited.name, f"{path.name}_half")
                self.assertEqual((direct.max_queue_delay_microseconds,
                                  direct.minimum_slot_utilization), (3000000, 0.5))
                edited.name = config.name
                edited.sequence_batching.ClearField("direct")
                self.assertEqual(edited, config)

    def test_zero_to_file(self):
        """INITIAL_STATE_FILE: the edited zero config equals the generated file config."""
        by_key = {(v.backend, v.dtype, v.shape, v.max_batch, v.initial_state, v.state_pairs): p
                  for v, p in self.models}
        for variant, path, text, _ in self.each():
            if variant.initial_state is not InitialState.ZERO or variant.multi_state \
                    or variant.state_dims is not None:
                continue  # one data file, and no file form of a [2] or [] state
            with self.subTest(model=self.label(path)):
                edited = self._edited(text, (r"zero_data.*", f'data_file:"{DATA_FILE}"'))
                key = (variant.backend, variant.dtype, variant.shape, variant.max_batch,
                       InitialState.FILE, variant.state_pairs)
                self.assertIn(key, by_key, "no file-initialised twin in the manifest")
                self.assertEqual(edited, parse_config(self.texts[by_key[key]]))

    def test_dyna_oldest_rewrite(self):
        """DSS:133-137: 4 candidate sequences and a 5 s queue delay."""
        for variant, path, text, config in self.each():
            if not (variant.dyna and variant.max_batch):
                continue
            with self.subTest(model=self.label(path)):
                edited = self._edited(
                    text, (r"max_candidate_sequences:.*", "max_candidate_sequences: 4"),
                    (r"max_queue_delay_microseconds:.*", "max_queue_delay_microseconds: 5000000"))
                oldest = edited.sequence_batching.oldest
                self.assertEqual((oldest.max_candidate_sequences, list(oldest.preferred_batch_size),
                                  oldest.max_queue_delay_microseconds), (4, [4], 5000000))
                oldest.max_candidate_sequences, oldest.max_queue_delay_microseconds = 6, 0
                self.assertEqual(edited, config)

    def test_output_copy(self):
        """L0_implicit_state's `_output` copy: rename and an appended OUTPUT_STATE output."""
        for variant, path, text, _ in self.each():
            if variant.max_batch or variant.state_type is not DType.INT32 or variant.dyna \
                    or variant.state_dims is not None:
                continue
            with self.subTest(model=self.label(path)):
                state = state_names(variant)[0][1]
                extra = f'output [\n  {{\n    name: "{state}"\n    data_type: TYPE_INT32\n' \
                        '    dims: [ 1 ]\n  }\n]\n'
                edited = self._edited(text + extra, (r"^name:.*", f'name: "{path.name}_output"'))
                self.assertEqual(edited.name, f"{path.name}_output")
                self.assertEqual([o.name for o in edited.output],
                                 [tensor(variant, "OUTPUT"), state])


if __name__ == "__main__":
    unittest.main()
