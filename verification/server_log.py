"""Fails a test run on any error line a real tritonserver logged, less a short allowlist.

A test that only compares answers misses a server that logs an error and
answers anyway (issue 13: every string file-state sequence logged core's
"Failed to initialize sequence state" while the python models still gave the
right values). `check_server_log` reads a server log after the server stopped
and raises `ServerLogError` for every Triton error line that `ALLOWED_ERRORS`
does not list: Triton's own format
(`E<mmdd> <hh:mm:ss.us> <thread> <file>:<line>] "<message>"`) and the one
the TensorFlow library inside the tensorflow backend logs with (absl's,
`E0000 00:00:<epoch seconds>.<us> <thread> <file>:<line>] <message>`,
unquoted).
Warning (`W`) and info (`I`) lines pass. The allowlist holds only what this
CPU-only machine always logs; nothing a model or its config causes belongs in
it. Shared by every real-server test, whatever the backend.
"""

import dataclasses
import pathlib
import re
from typing import Iterable, List, Tuple


@dataclasses.dataclass(frozen=True, kw_only=True)
class AllowedError:
    """An error line every server on this machine logs, whatever it serves.

    Attributes:
        source: The logging source file, as in the line (`server.cc`).
        message: The whole logged message, without its quotes.
        reason: Why it is harmless here and why the machine always logs it.
    """

    source: str
    message: str
    reason: str


ALLOWED_ERRORS: Tuple[AllowedError, ...] = (
    AllowedError(
        source="server.cc",
        message="CudaDriverHelper has not been initialized.",
        reason="no CUDA driver on a CPU-only machine; core logs it once at start-up,"
               " before any model is loaded (measured with tritonserver 2.51)",
    ),
    AllowedError(
        source="cuda_platform.cc",
        message="failed call to cuInit: INTERNAL: CUDA error: Failed call to cuInit:"
                " UNKNOWN ERROR (303)",
        reason="the TensorFlow 2.21 library probes for a CUDA driver when the tensorflow"
               " backend loads it (once per server, at its first TensorFlow model); a CPU-only"
               " machine has none, and TensorFlow goes on on the CPU (measured with"
               " tritonserver 2.51 and Triton's r24.10 tensorflow backend)",
    ),
)

# E1129 11:17:43.123456 1234 sequence_batch_scheduler.cc:1417] "message" (Triton)
# E0000 00:00:1796326012.793840   22081 cuda_platform.cc:52] message (absl, TensorFlow)
_ERROR_LINE = re.compile(
    r"^E\d{4} (?:\d{2}:\d{2}:\d{2}|00:00:\d+)\.\d+\s+\d+ (?P<source>[^\s:]+):\d+\]"
    r" (?P<message>.*)$")
_SHOWN = 20


class ServerLogError(AssertionError):
    """The server logged errors that are not on the allowlist."""

    def __init__(self, log: str, lines: List[str]) -> None:
        shown = "\n".join(lines[:_SHOWN])
        more = f"\n... and {len(lines) - _SHOWN} more" if len(lines) > _SHOWN else ""
        super().__init__(
            f"tritonserver log {log} has {len(lines)} error line(s) not in"
            f" verification/server_log.py ALLOWED_ERRORS; a test passes only with a clean"
            f" log, so fix what the line reports (only an error every server on this"
            f" machine logs, unrelated to models, may be allowlisted, with its reason):"
            f"\n{shown}{more}")


def _allowed(line: str, allowed: Iterable[AllowedError]) -> bool:
    match = _ERROR_LINE.match(line)
    if match is None:
        return False  # an E line of another shape is still an error
    message = match["message"]
    if len(message) >= 2 and message[0] == message[-1] == '"':
        message = message[1:-1]
    return any(match["source"] == entry.source and message == entry.message
               for entry in allowed)


def unexpected_errors(lines: Iterable[str],
                      allowed: Iterable[AllowedError] = ALLOWED_ERRORS) -> List[str]:
    """The error lines (`E` + month and day) of a log that `allowed` does not list."""
    allowed = tuple(allowed)
    return [line for line in (raw.rstrip("\n") for raw in lines)
            if re.match(r"E\d{4} ", line) and not _allowed(line, allowed)]


def refused_load(line: str, models: Iterable[str]) -> bool:
    """Whether an error line reports the refused load of one of `models` (named in quotes).

    Loading a model Triton must refuse (verification/catalogue_checks.py,
    the invalid-model repository) logs the refusal: core's `failed to load
    '<model>' ...` and a backend's `Failed to create instance: ... '<model>'`.
    Those lines, and only for the models the check saw refused, are expected.
    """
    match = _ERROR_LINE.match(line)
    return match is not None and any(f"'{model}'" in match["message"] for model in models)


def check_server_log(path: pathlib.Path, refused: Iterable[str] = ()) -> None:
    """Raise `ServerLogError` when the log at `path` has an unexpected error line.

    Expected: the allowlist's lines, and the refused loads of `refused`.
    """
    refused = tuple(refused)
    with open(path, encoding="utf-8", errors="replace") as log:
        errors = [line for line in unexpected_errors(log) if not refused_load(line, refused)]
    if errors:
        raise ServerLogError(str(path), errors)
