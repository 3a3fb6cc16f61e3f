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
import pathlib
import sys
from typing import List, Optional

from generators import worker
from generators.backends import builder_for
from generators.build_options import DEFAULT_ONNX_IR_VERSION, DEFAULT_ONNX_OPSET, BuildOptions
from generators.errors import SpecError
from generators.fork_child import run_in_child
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
    return run_in_child(lambda: _guarded(backend, argv))


def _guarded(backend: Backend, argv: List[str]) -> tuple:
    return worker.guarded(lambda: build_one(backend, argv))


def serve_worker(backend: Backend) -> int:
    """Answer Bazel's JSON worker requests until stdin closes."""
    fork = getattr(builder_for(backend), "FORK_PER_MODEL", False)
    build = _build_in_child if fork else _guarded
    return worker.serve(lambda argv: build(backend, argv))


def main(backend: Backend, argv: Optional[List[str]] = None) -> int:
    """Command-line entry of a backend generator binary."""
    argv = sys.argv[1:] if argv is None else argv
    if "--persistent_worker" in argv:
        return serve_worker(backend)
    code, message = _guarded(backend, worker.expand_param_file(argv))
    sys.stderr.write(message)
    return code
