"""Entry point of the per-backend generator binaries and their Bazel worker.

One invocation builds one variant into one directory:

    <backend>_generator --spec '<variant json>' --out <model dir>

With `--persistent_worker` it serves Bazel's JSON worker protocol instead,
paying the interpreter start and the heavy imports once. Builders that keep
process-wide state (TensorFlow's function-name counter) set
`FORK_PER_MODEL = True`; the worker then builds each model in a forked
child, which gives the same bytes as a fresh process.
"""

import argparse
import io
import json
import os
import pathlib
import sys
import traceback
from typing import List, Optional

from generators.backends import builder_for
from generators.build_options import DEFAULT_ONNX_IR_VERSION, DEFAULT_ONNX_OPSET, BuildOptions
from generators.errors import GeneratorError, SpecError
from generators.variant import Backend, Variant
from generators.writer import write_model_dir


def _parser(backend: Backend) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"{backend.value}_generator",
        description=f"Build one {backend.value} implicit-state model from a variant spec.",
    )
    parser.add_argument("--spec", required=True, help="variant spec as JSON")
    parser.add_argument("--out", required=True, type=pathlib.Path, help="empty model directory")
    parser.add_argument("--onnx_opset", type=int, default=DEFAULT_ONNX_OPSET)
    parser.add_argument("--onnx_ir_version", type=int, default=DEFAULT_ONNX_IR_VERSION)
    return parser


def build_one(backend: Backend, argv: List[str]) -> None:
    """Parse one request's arguments and build its model (raises on error)."""
    args = _parser(backend).parse_args(argv)
    variant = Variant.from_json(args.spec)
    if variant.backend is not backend:
        raise SpecError(
            f"field 'backend' is '{variant.backend.value}' but this is the"
            f" {backend.value} generator; use the {variant.backend.value}_generator"
        )
    options = BuildOptions(onnx_opset=args.onnx_opset, onnx_ir_version=args.onnx_ir_version)
    write_model_dir(variant, options, args.out)


def _build_in_child(backend: Backend, argv: List[str]) -> tuple:
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: build, report, exit without running parent cleanup
        os.close(read_fd)
        code, message = _guarded(backend, argv)
        with os.fdopen(write_fd, "w") as pipe:
            pipe.write(message)
        os._exit(code)
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        message = pipe.read()
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    return (code if code >= 0 else 1), message or f"child exited with {code}\n"


def _guarded(backend: Backend, argv: List[str]) -> tuple:
    try:
        build_one(backend, argv)
        return 0, ""
    except GeneratorError as err:
        return 1, f"error: {err}\n"
    except SystemExit as exit_:  # argparse
        return int(exit_.code or 0), ""
    except Exception:  # noqa: BLE001 - a worker must answer every request
        return 1, traceback.format_exc()


def _requests(stream):
    """Yield JSON work requests; Bazel does not end them with a newline."""
    decoder = json.JSONDecoder()
    buffer = ""
    while True:
        chunk = os.read(stream.fileno(), 65536)
        if not chunk:
            return
        buffer += chunk.decode()
        while buffer.strip():
            try:
                request, end = decoder.raw_decode(buffer.lstrip())
            except json.JSONDecodeError:
                break
            buffer = buffer.lstrip()[end:]
            yield request


def serve_worker(backend: Backend) -> int:
    """Answer Bazel's JSON worker requests until stdin closes."""
    fork = getattr(builder_for(backend), "FORK_PER_MODEL", False)
    real_stdout = sys.stdout
    for request in _requests(sys.stdin):
        sys.stdout = io.StringIO()  # stray prints must not corrupt the protocol
        argv = request.get("arguments", [])
        code, message = _build_in_child(backend, argv) if fork else _guarded(backend, argv)
        sys.stdout = real_stdout
        response = {"exitCode": code, "output": message, "requestId": request.get("requestId", 0)}
        real_stdout.write(json.dumps(response) + "\n")
        real_stdout.flush()
    return 0


def main(backend: Backend, argv: Optional[List[str]] = None) -> int:
    """Command-line entry of a backend generator binary."""
    argv = sys.argv[1:] if argv is None else argv
    if "--persistent_worker" in argv:
        return serve_worker(backend)
    if len(argv) == 1 and argv[0].startswith("@"):
        argv = pathlib.Path(argv[0][1:]).read_text().splitlines()
    code, message = _guarded(backend, argv)
    sys.stderr.write(message)
    return code
