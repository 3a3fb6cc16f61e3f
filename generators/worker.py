"""Bazel persistent-worker loop (JSON protocol) shared by the generator tools.

Bazel starts the tool with `--persistent_worker` and writes JSON work
requests to its stdin, back to back and without a trailing newline, so they
are decoded incrementally; each gets one JSON response line on stdout. A
handler maps a request's arguments to `(exit code, output text)` and must
not raise: an exception would end the worker and fail every build action
queued behind it. `guarded` gives every handler the same answers.
"""

import io
import json
import os
import sys
import traceback
from typing import Callable, Iterator, List, Tuple

from generators.errors import GeneratorError

Handler = Callable[[List[str]], Tuple[int, str]]


def requests(stream) -> Iterator[dict]:
    """Yield JSON work requests from a binary-readable stream until EOF."""
    decoder = json.JSONDecoder()
    buffer = ""
    while True:
        chunk = os.read(stream.fileno(), 65536)
        if not chunk:
            return
        buffer += chunk.decode()
        while buffer.strip():
            buffer = buffer.lstrip()
            try:
                request, end = decoder.raw_decode(buffer)
            except json.JSONDecodeError:
                break  # incomplete: wait for more bytes
            buffer = buffer[end:]
            yield request


def guarded(action: Callable[[], None]) -> Tuple[int, str]:
    """Run one request's action and answer `(exit code, output)`; never raises.

    The generators' own errors and OS errors (a full disk, a read-only or
    missing output folder) answer with one line; argparse's exit with its
    status (it printed the usage error); anything else is a bug, answered
    with its traceback.
    """
    try:
        action()
    except GeneratorError as err:
        return 1, f"error: {err}\n"
    except OSError as err:
        return 1, f"error: {err}; check that path, its permissions and free space\n"
    except SystemExit as exit_:
        return int(exit_.code or 0), ""
    except Exception:  # noqa: BLE001 - a worker must answer every request
        return 1, traceback.format_exc()
    return 0, ""


def serve(handler: Handler) -> int:
    """Answer work requests until stdin closes."""
    real_stdout = sys.stdout
    for request in requests(sys.stdin):
        sys.stdout = io.StringIO()  # stray prints must not corrupt the protocol
        try:
            code, output = handler(request.get("arguments", []))
        finally:
            sys.stdout = real_stdout
        response = {"exitCode": code, "output": output, "requestId": request.get("requestId", 0)}
        real_stdout.write(json.dumps(response) + "\n")
        real_stdout.flush()
    return 0


def expand_param_file(argv: List[str]) -> List[str]:
    """Arguments of a one-shot run, reading a lone `@file` (multiline format)."""
    if len(argv) == 1 and argv[0].startswith("@"):
        with open(argv[0][1:]) as params:
            return params.read().splitlines()
    return argv
