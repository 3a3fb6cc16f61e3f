"""Unit tests of generators/model_config.py beyond the built matrix.

Upstream writes multi-dimensional state dims as `dims: 1,1,1`, which is not
valid text protobuf; ours must parse for any rank. Also pins the fields that
are written even when they hold proto3's zero default.
"""

import os
import struct
import subprocess
import sys
import unittest
from unittest import mock

from generators import served_types
from generators.model_config import (
    build_config,
    config_text,
    initial_state_files,
    parse_config,
    tensor_names,
)
from generators.triton_schema import model_config_pb2 as mc
from generators.variant import Variant


def _variant(**overrides):
    spec = {"backend": "onnx", "dtype": "int32", "shape": [2, -1, 3], "max_batch": 0}
    spec.update(overrides)
    return Variant.from_spec(spec)


class MultiDimensionalTest(unittest.TestCase):
    """A rank-3 state with a variable dim round-trips through the text."""

    def test_dims_parse_back(self):
        text = config_text(build_config(_variant(initial_state="zero")))
        config = parse_config(text)
        state = config.sequence_batching.state[0]
        self.assertEqual(list(state.dims), [2, -1, 3])
        self.assertEqual(list(state.initial_state[0].dims), [2, 1, 3])
        self.assertIn("  dims: [2, -1, 3]\n", text)

    def test_file_initial_state_fills_every_element(self):
        files = initial_state_files(_variant(initial_state="file"))
        self.assertEqual(files, {"input_state_data": struct.pack("<i", 100) * 6})

    def test_string_file_initial_state_is_empty_strings(self):
        """Six empty BYTES elements: what Triton core leaves after zeroing a string state."""
        files = initial_state_files(_variant(dtype="object", initial_state="file"))
        self.assertEqual(files, {"input_state_data": b"\0" * 24})


class ZeroFieldsTest(unittest.TestCase):
    """Zero-valued fields a harness or reader expects are still written."""

    def test_zero_max_batch_and_start_kind(self):
        text = config_text(build_config(_variant(shape=[1])))
        self.assertIn("\nmax_batch_size: 0\n", text)
        self.assertIn("kind: CONTROL_SEQUENCE_START\n", text)

    def test_oldest_queue_delay_zero(self):
        text = config_text(build_config(_variant(shape=[1], max_batch=8, strategy="oldest")))
        self.assertIn("    max_queue_delay_microseconds: 0\n", text)
        self.assertEqual(parse_config(text).sequence_batching.oldest.max_candidate_sequences, 6)



class LibtorchNamingTest(unittest.TestCase):
    """The pytorch backend's `<name>__<index>` rule, with the positions upstream uses."""

    def test_single_state(self):
        config = build_config(_variant(backend="libtorch", shape=[1], max_batch=8))
        batching = config.sequence_batching
        self.assertEqual(config.platform, "pytorch_libtorch")
        self.assertEqual([t.name for t in config.input], ["INPUT__0"])
        self.assertEqual([t.name for t in config.output], ["OUTPUT__0"])
        self.assertEqual([c.name for c in batching.control_input], ["START__2", "READY__3"])
        self.assertEqual([(s.input_name, s.output_name) for s in batching.state],
                         [("INPUT_STATE__1", "OUTPUT_STATE__1")])

    def test_multi_state_takes_the_next_positions(self):
        pairs = [["INPUT_STATE", "OUTPUT_STATE"], ["INPUT_STATE_1", "OUTPUT_STATE_1"],
                 ["INPUT_STATE_2", "OUTPUT_STATE_2"]]
        variant = _variant(backend="libtorch", shape=[1], state_pairs=pairs,
                           initial_state="file")
        config = build_config(variant)
        self.assertEqual([(s.input_name, s.output_name) for s in config.sequence_batching.state],
                         [("INPUT_STATE__1", "OUTPUT_STATE__1"),
                          ("INPUT_STATE_1__4", "OUTPUT_STATE_1__2"),
                          ("INPUT_STATE_2__5", "OUTPUT_STATE_2__3")])
        # Data files keep the plain names (pair 0: upstream's input_state_data).
        self.assertEqual([s.initial_state[0].data_file for s in config.sequence_batching.state],
                         ["input_state_data", "input_state_1_data", "input_state_2_data"])
        self.assertEqual(sorted(initial_state_files(variant)),
                         ["input_state_1_data", "input_state_2_data", "input_state_data"])

    def test_other_families_keep_plain_names(self):
        names = tensor_names(_variant(backend="onnx"))
        self.assertEqual((names.input, names.output, names.start, names.ready),
                         ("INPUT", "OUTPUT", "START", "READY"))


# initial_state/input_state_data of a file-initialised [1] state, per state
# type, written out byte by byte: 100 little-endian (BOOLEAN: true; BFLOAT16:
# float32 100.0's upper half, 0x42c8; "bool" models carry INT32 data).
FILE_BYTES = {
    "boolean": b"\x01", "int8": b"\x64", "int16": b"\x64\x00", "int32": b"\x64\x00\x00\x00",
    "int64": b"\x64\x00\x00\x00\x00\x00\x00\x00", "uint8": b"\x64", "uint16": b"\x64\x00",
    "uint32": b"\x64\x00\x00\x00", "uint64": b"\x64\x00\x00\x00\x00\x00\x00\x00",
    "float16": b"\x40\x56", "bfloat16": b"\xc8\x42", "float32": b"\x00\x00\xc8\x42",
    "float64": b"\x00\x00\x00\x00\x00\x00\x59\x40", "bool": b"\x64\x00\x00\x00",
}
# Config data type and control field per dtype.
CONFIG_TYPES = {
    "boolean": ("TYPE_BOOL", "bool_false_true"), "int8": ("TYPE_INT8", "int32_false_true"),
    "int16": ("TYPE_INT16", "int32_false_true"), "int32": ("TYPE_INT32", "int32_false_true"),
    "int64": ("TYPE_INT64", "int32_false_true"), "uint8": ("TYPE_UINT8", "int32_false_true"),
    "uint16": ("TYPE_UINT16", "int32_false_true"), "uint32": ("TYPE_UINT32", "int32_false_true"),
    "uint64": ("TYPE_UINT64", "int32_false_true"), "float16": ("TYPE_FP16", "int32_false_true"),
    "bfloat16": ("TYPE_BF16", "int32_false_true"), "float32": ("TYPE_FP32", "fp32_false_true"),
    "float64": ("TYPE_FP64", "int32_false_true"), "bool": ("TYPE_INT32", "bool_false_true"),
}


def _types(config):
    """(INPUT, OUTPUT, state, initial state) data type names of a single-state config."""
    state = config.sequence_batching.state[0]
    initial = [mc.DataType.Name(i.data_type) for i in state.initial_state]
    return (mc.DataType.Name(config.input[0].data_type), mc.DataType.Name(config.output[0].data_type),
            mc.DataType.Name(state.data_type), initial)


class StateCoverageConfigTest(unittest.TestCase):
    """The state-coverage fields in the config: types, dims, the single-buffer flag, data files."""

    def setUp(self) -> None:
        """No measured exclusion: the configs are the generator's whatever a backend serves."""
        patcher = mock.patch.dict(served_types.EXCLUSIONS, clear=True)
        patcher.start()
        self.addCleanup(patcher.stop)

    def test_every_state_type(self):
        """INPUT, OUTPUT, state and initial state of the dtype; its control field."""
        for dtype, (type_name, field) in CONFIG_TYPES.items():
            with self.subTest(dtype=dtype):
                config = build_config(_variant(dtype=dtype, shape=[1], max_batch=8,
                                               backend="python", initial_state="zero"))
                self.assertEqual(_types(config), (type_name, type_name, type_name, [type_name]))
                controls = config.sequence_batching.control_input
                self.assertEqual({c.name: list(getattr(c.control[0], field)) for c in controls
                                  if c.name in ("START", "END", "READY")},
                                 {"START": [0, 1], "END": [0, 1], "READY": [0, 1]})

    def test_file_bytes_per_type(self):
        """100 (true) per element, little-endian, in the state's type."""
        for dtype, blob in FILE_BYTES.items():
            for shape, count in (([1], 1), ([2, 3], 6)):
                with self.subTest(dtype=dtype, shape=shape):
                    files = initial_state_files(_variant(dtype=dtype, shape=shape, max_batch=8,
                                                         backend="python", initial_state="file"))
                    self.assertEqual(files, {"input_state_data": blob * count})

    def test_wider_state(self):
        """INPUT of the dtype; OUTPUT, state, initial state and data file of the state's."""
        config = build_config(_variant(shape=[1], max_batch=8, state_dtype="int64",
                                       initial_state="file"))
        self.assertEqual(_types(config), ("TYPE_INT32", "TYPE_INT64", "TYPE_INT64", ["TYPE_INT64"]))
        files = initial_state_files(_variant(shape=[1], max_batch=8, state_dtype="int64",
                                             initial_state="file"))
        self.assertEqual(files, {"input_state_data": FILE_BYTES["int64"]})
        config = build_config(_variant(dtype="float16", shape=[1], state_dtype="float32"))
        self.assertEqual(_types(config), ("TYPE_FP16", "TYPE_FP32", "TYPE_FP32", []))

    def test_state_dims(self):
        """[2] and [] (no dims line at all), INPUT and OUTPUT keep [1]; zero initial state alike."""
        for state_dims, line in (([2], "    dims: [2]\n"), ([], None)):
            with self.subTest(state_dims=state_dims):
                variant = _variant(shape=[1], max_batch=8, state_dims=state_dims,
                                   initial_state="zero")
                text = config_text(build_config(variant))
                config = parse_config(text)
                state = config.sequence_batching.state[0]
                self.assertEqual((list(config.input[0].dims), list(config.output[0].dims)),
                                 ([1], [1]))
                self.assertEqual((list(state.dims), list(state.initial_state[0].dims)),
                                 (state_dims, state_dims))
                state_text = text[text.index("  state {"):]
                if line:
                    self.assertIn(line, state_text)
                else:
                    self.assertNotIn("dims", state_text)

    def test_same_buffer_flag(self):
        """`use_same_buffer_for_input_output: true` in the state, only when asked for."""
        text = config_text(build_config(_variant(shape=[1], max_batch=8, same_buffer=True)))
        self.assertIn("    use_same_buffer_for_input_output: true\n", text)
        self.assertTrue(parse_config(text).sequence_batching.state[0]
                        .use_same_buffer_for_input_output)
        self.assertNotIn("use_same_buffer", config_text(build_config(_variant(shape=[1]))))

    def test_dyna_families(self):
        """Dyna controls: libtorch END__4, CORRID__5 (INT64); python, savedmodel END, CORRID (UINT64)."""
        cases = {"libtorch": ("END__4", "CORRID__5", "TYPE_INT64", "pytorch_libtorch", ""),
                 "python": ("END", "CORRID", "TYPE_UINT64", "", "python"),
                 "savedmodel": ("END", "CORRID", "TYPE_UINT64", "tensorflow_savedmodel", "")}
        for backend, (end, corrid, corrid_type, platform, backend_field) in cases.items():
            with self.subTest(backend=backend):
                config = build_config(_variant(backend=backend, shape=[1], max_batch=8,
                                               strategy="oldest"))
                controls = {c.name: c.control[0] for c in config.sequence_batching.control_input}
                kinds = mc.ModelSequenceBatching.Control.Kind
                self.assertEqual(kinds.Name(controls[end].kind), "CONTROL_SEQUENCE_END")
                self.assertEqual((kinds.Name(controls[corrid].kind),
                                  mc.DataType.Name(controls[corrid].data_type)),
                                 ("CONTROL_SEQUENCE_CORRID", corrid_type))
                self.assertEqual((config.platform, config.backend), (platform, backend_field))
                self.assertEqual(config.sequence_batching.oldest.max_candidate_sequences, 6)


class SchemaImportTest(unittest.TestCase):
    """The config schema is reached without Triton's gRPC client."""

    def _modules_after(self, statement):
        # A fresh interpreter: this test process may have imported grpc already.
        probe = (
            "import sys\n"
            f"{statement}\n"
            "print(' '.join(sorted(m for m in ('grpc', 'tritonclient.grpc', "
            "'tritonclient.utils', 'ml_dtypes') if m in sys.modules)))\n"
        )
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        result = subprocess.run(
            [sys.executable, "-c", probe],
            capture_output=True,
            text=True,
            cwd=root,
            check=True,
        )
        return result.stdout.split()

    def test_model_config_imports_no_grpc(self):
        self.assertEqual(self._modules_after("import generators.model_config"), [])

    def test_grpc_client_reuses_the_loaded_schema(self):
        loaded = self._modules_after(
            "from generators.triton_schema import model_config_pb2 as ours\n"
            "from tritonclient.grpc import model_config_pb2 as theirs\n"
            "assert ours is theirs, 'model_config.proto loaded twice'"
        )
        self.assertIn("grpc", loaded)


if __name__ == "__main__":
    unittest.main()
