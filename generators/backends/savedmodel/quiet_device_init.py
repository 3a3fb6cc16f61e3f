"""TensorFlow's device start-up, without its cuInit error line where no CUDA driver exists.

The first time a process lists TensorFlow's devices (its first op does),
TensorFlow's CUDA platform calls cuInit. Where no CUDA driver is installed,
TensorFlow's driver stub answers 303 and TensorFlow logs, through C++ absl
logging straight to file descriptor 2 (Python's logging never sees it):

    E0000 ... cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error:
    Failed call to cuInit: UNKNOWN ERROR (303)

(one line). The builder runs in a fresh fork per model (FORK_PER_MODEL), so
the CLI printed it once per SavedModel. Measured on TensorFlow 2.21: setting
CUDA_VISIBLE_DEVICES=-1 still calls cuInit, `tf.config.set_visible_devices`
lists the devices (and so logs) first, and TF_CPP_MIN_LOG_LEVEL=3 would hide
every other error too. So `init_devices` lists the devices itself, once per
process, with file descriptor 2 pointed at a temporary file for just that
call, then copies the file back to stderr, all but that one line.

Only where no CUDA driver loads (libcuda.so.1, the library TensorFlow's stub
opens): with a driver installed, a failing cuInit is a real fault worth
seeing, and TensorFlow starts exactly as it would without this module.
"""

import contextlib
import ctypes
import functools
import os
import re
import sys
import tempfile
from typing import Callable, Iterator

import tensorflow as tf

# 303 is what TensorFlow's stub returns for every driver call when it could
# not open the driver; "UNKNOWN ERROR" because it cannot name the code either.
# Any time stamp, thread id, source file and line: they vary between runs
# and TensorFlow versions.
_NO_DRIVER_CUINIT = re.compile(rb"E\d{4} [^\]]*\] failed call to cuInit: .*UNKNOWN ERROR \(303\)\s*")


def is_no_driver_cuinit_line(line: bytes) -> bool:
    """True for TensorFlow's cuInit error line as logged where no driver is installed."""
    return _NO_DRIVER_CUINIT.fullmatch(line) is not None


def cuda_driver_present() -> bool:
    """Whether the CUDA driver library loads (TensorFlow has tried it already at import)."""
    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    return True


def _write_all(fd: int, data: bytes) -> None:
    try:
        while data:
            data = data[os.write(fd, data):]
    except OSError:  # a reader that went away: TensorFlow's own write would be lost too
        pass


def _flush_python_stderr() -> None:
    if sys.stderr is not None:  # None when the process started without descriptor 2
        sys.stderr.flush()


@contextlib.contextmanager
def stderr_filtered(drop: Callable[[bytes], bool]) -> Iterator[None]:
    """Hold back file descriptor 2 during the block, then write it out but the lines `drop` names.

    A temporary file, not a pipe: nothing has to read while the block runs,
    however much it writes. The file is unlinked at once, so a forked child
    that leaves by `os._exit` leaves nothing behind. A crash inside the block
    loses what the block wrote, which is why the block stays one call.
    """
    _flush_python_stderr()  # what Python buffered belongs before the block
    try:
        real_stderr = os.dup(2)
    except OSError:  # descriptor 2 is closed: nothing reaches a reader, nothing to filter
        real_stderr = None
    if real_stderr is None:
        yield
        return
    try:
        with tempfile.TemporaryFile() as held:
            os.dup2(held.fileno(), 2)
            try:
                yield
            finally:
                _flush_python_stderr()
                os.dup2(real_stderr, 2)
                held.seek(0)
                _write_all(2, b"".join(line for line in held if not drop(line)))
    finally:
        os.close(real_stderr)


@functools.cache  # once per process; a fork of a process that built nothing starts afresh
def init_devices() -> None:
    """Start TensorFlow's devices now, dropping the no-driver cuInit line (module docstring)."""
    if cuda_driver_present():
        return  # TensorFlow starts its devices itself, at the first op, as ever
    with stderr_filtered(is_no_driver_cuinit_line):
        tf.config.list_physical_devices()
