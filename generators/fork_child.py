"""Run one model build in a forked child of a process that has built nothing.

Builders that keep process-wide state (TensorFlow numbers the functions it
saves with a counter in its C++ runtime) set `FORK_PER_MODEL = True`. Both
the Bazel worker and the standalone CLI then build each model in a fresh
fork, which writes the same bytes as a fresh process at a fraction of the
start-up cost, so the two paths stay byte-identical.

Before each fork the parent freezes its heap (`gc.freeze`): otherwise every
child's first full garbage collection walks the hundreds of thousands of
objects TensorFlow's import left behind (about 0.2 s per model). Collection
timing changes no model byte.
"""

import gc
import os
import traceback
from typing import Callable, Tuple

from generators import errors

Outcome = Tuple[int, str]  # (exit code, message)


def run_in_child(build: Callable[[], Outcome]) -> Outcome:
    """Call `build` in a forked child; returns its (exit code, message)."""
    gc.freeze()  # the child's collector then skips everything inherited
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: build, report, exit without running the parent's cleanup
        os.close(read_fd)
        try:
            code, message = build()
        except BaseException:  # noqa: BLE001 - everything must reach the parent
            code, message = 1, traceback.format_exc()
        with os.fdopen(write_fd, "w") as pipe:
            pipe.write(message)
        os._exit(code)
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        message = pipe.read()
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0 and not message:
        message = f"model build in a forked child failed (status {code})\n"
    return (code if code >= 0 else 1), message


def _report_errors(action: Callable[[], None]) -> Outcome:
    try:
        action()
    except Exception as err:  # noqa: BLE001 - the parent re-raises it as one clear error
        return 1, f"{type(err).__name__}\n{err}"
    return 0, ""


def _error_from_child(message: str) -> errors.GeneratorError:
    """Rebuild the GeneratorError subclass a child reported (class name, newline, text)."""
    name, _, text = message.partition("\n")
    cls = getattr(errors, name, None)
    if not (isinstance(cls, type) and issubclass(cls, errors.GeneratorError)):
        if name.isidentifier():  # another exception (OSError, a checker's): class and text
            return errors.GeneratorError(f"model build in a forked child failed: {name}: {text}")
        return errors.GeneratorError(message.strip())  # a crash, as run_in_child words it
    # Each subclass prefixes its message in __init__; strip it so it is not doubled.
    return cls(text.removeprefix(str(cls(""))))


def call(action: Callable[[], None], *, fork: bool) -> None:
    """Run `action`, in a forked child when `fork` (a builder's FORK_PER_MODEL).

    A GeneratorError raised in the child is raised again here with its class
    and message; any other exception becomes a GeneratorError naming its
    class and message.
    """
    if not fork:
        action()
        return
    code, message = run_in_child(lambda: _report_errors(action))
    if code != 0:
        raise _error_from_child(message)
