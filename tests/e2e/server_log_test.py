"""Unit tests of verification/server_log.py on hand-written tritonserver log lines.

The lines follow tritonserver 2.51's format; the failing examples are the
errors issue 13 saw on a real server, which must never pass.
"""

import pathlib
import shutil
import tempfile
import unittest

from verification import server_log

CUDA = 'E1129 11:17:43.123456 1234 server.cc:241] "CudaDriverHelper has not been initialized."'
STRING_STATE = ('E1129 11:17:44.000001 1290 sequence_batch_scheduler.cc:1417] "Failed to'
                ' initialize sequence state: The total byte size must be a multiple of 4 when'
                ' setting the sequence state to zero."')
WARNING = ('W1129 11:17:43.200000 1234 pinned_memory_manager.cc:273] "Unable to allocate'
           ' pinned system memory, pinned memory pool will not be available: CUDA driver'
           ' version is insufficient for CUDA runtime version"')
# What the TensorFlow library logs, in absl's format, when the tensorflow backend loads it.
TF_CUINIT = ("E0000 00:00:1796326012.793840   22081 cuda_platform.cc:52] failed call to cuInit:"
             " INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)")
# A real TensorFlow error in the same format (a SavedModel that fails to load).
TF_LOAD_ERROR = ("E0000 00:00:1796326013.000001   22081 loader.cc:115] SavedModel load"
                 " failed: NOT_FOUND: Could not find variable table")
INFO = 'I1129 11:17:43.300000 1234 server.cc:674] "Started GRPCInferenceService at 0.0.0.0:8001"'


class UnexpectedErrorsTest(unittest.TestCase):
    """Which lines `unexpected_errors` reports."""

    def test_error_line_is_reported(self):
        """Core's string-state error fails the log."""
        self.assertEqual(server_log.unexpected_errors([INFO, STRING_STATE + "\n"]),
                         [STRING_STATE])

    def test_allowlisted_line_passes(self):
        """The CUDA driver line every CPU-only server logs is allowed."""
        self.assertEqual(server_log.unexpected_errors([CUDA]), [])

    def test_tensorflow_cuinit_line_passes(self):
        """TensorFlow's CPU-only cuInit line, in absl's format, is allowed."""
        self.assertEqual(server_log.unexpected_errors([TF_CUINIT]), [])

    def test_other_absl_format_error_is_reported(self):
        """Another TensorFlow error line in absl's format fails the log."""
        self.assertEqual(server_log.unexpected_errors([TF_CUINIT, TF_LOAD_ERROR]),
                         [TF_LOAD_ERROR])

    def test_warning_and_info_lines_pass(self):
        """W and I lines, and the server's option tables, are not errors."""
        table = "| server_version                   | 2.51.0 |"
        self.assertEqual(server_log.unexpected_errors([WARNING, INFO, table, ""]), [])

    def test_allowlist_matches_source_and_whole_message(self):
        """The same message from another file, or a longer message, is not allowed."""
        other_file = CUDA.replace("server.cc:241", "model_lifecycle.cc:12")
        longer = CUDA.replace('initialized."', 'initialized. python_sequence_object"')
        self.assertEqual(server_log.unexpected_errors([other_file, longer]),
                         [other_file, longer])

    def test_unparsed_error_line_is_reported(self):
        """An E line of an unexpected shape still counts as an error."""
        line = "E1129 backend crashed"
        self.assertEqual(server_log.unexpected_errors([line]), [line])

    def test_every_entry_has_a_reason(self):
        """Each allowlist entry says why; none names a model family."""
        for entry in server_log.ALLOWED_ERRORS:
            with self.subTest(entry=entry.message):
                self.assertGreater(len(entry.reason), 20)
                for word in ("python", "onnx", "savedmodel", "sequence", "state", "model '"):
                    self.assertNotIn(word, entry.message)


class CheckServerLogTest(unittest.TestCase):
    """`check_server_log` on a log file."""

    def write(self, *lines: str) -> pathlib.Path:
        """A temporary log holding `lines`."""
        directory = pathlib.Path(tempfile.mkdtemp(prefix="server_log_test."))
        self.addCleanup(shutil.rmtree, directory, ignore_errors=True)
        path = directory / "tritonserver.log"
        path.write_text("".join(line + "\n" for line in lines))
        return path

    def test_clean_log_passes(self):
        """Allowlisted, warning and info lines only: no error."""
        server_log.check_server_log(self.write(CUDA, WARNING, INFO))

    def test_error_fails_with_the_line_and_the_fix(self):
        """The message names the log, the offending line and the allowlist."""
        path = self.write(CUDA, STRING_STATE, INFO)
        with self.assertRaises(server_log.ServerLogError) as caught:
            server_log.check_server_log(path)
        message = str(caught.exception)
        self.assertIn(str(path), message)
        self.assertIn("1 error line(s)", message)
        self.assertIn(STRING_STATE, message)
        self.assertIn("ALLOWED_ERRORS", message)
        self.assertNotIn(CUDA, message)


if __name__ == "__main__":
    unittest.main()
