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

from generators.model_config import (
    build_config,
    config_text,
    initial_state_files,
    parse_config,
    tensor_names,
)
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
