"""Standalone generator with upstream's flags; works without Bazel.

Drop-in for Triton's `qa/common/gen_qa_implicit_models.py`:

    python3 -m generators.gen_qa_implicit_models --models_dir DIR --onnx \
        [--variable] [--initial-state zero|file] [--onnx_opset N]

writes the models of one upstream repository straight into DIR, adding or
replacing only those models. `--dyna` selects the dyna (oldest-strategy)
models, and `--all` writes every repository of the matrix under DIR plus a
manifest, exactly as `bazel build //models:implicit_repo` lays them out.
Models are byte-identical to the Bazel build's. Progress goes to stderr.
"""

import argparse
import pathlib
import sys
import time
from typing import List, Optional

from generators import fork_child
from generators.backends import builder_for
from generators.build_options import DEFAULT_ONNX_IR_VERSION, DEFAULT_ONNX_OPSET, BuildOptions
from generators.errors import GeneratorError, SpecError
from generators.manifest import write_manifest
from generators.matrix import Entry, expand
from generators.variant import Backend, InitialState, Strategy, Variant
from generators.writer import check_output_dir, install_model

_BACKEND_FLAGS = {
    "onnx": Backend.ONNX,
    "savedmodel": Backend.SAVEDMODEL,
    "python": Backend.PYTHON,
    "tensorrt": Backend.PLAN,
    "libtorch": Backend.LIBTORCH,
}


def backend_flag(backend: Backend) -> str:
    """The CLI flag that selects a backend (`--tensorrt` for plans)."""
    return next(f"--{flag}" for flag, b in _BACKEND_FLAGS.items() if b is backend)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models_dir", type=pathlib.Path, required=True,
                        help="top-level model directory (created if missing)")
    for flag, backend in _BACKEND_FLAGS.items():
        parser.add_argument(f"--{flag}", action="store_true",
                            help=f"generate {backend.value} models")
    parser.add_argument("--variable", action="store_true",
                        help="variable shape [-1] (batched models only)")
    parser.add_argument("--initial-state", dest="initial_state", default="none",
                        choices=[s.value for s in InitialState],
                        help="initial state of INPUT_STATE")
    parser.add_argument("--dyna", action="store_true",
                        help="dyna (oldest-strategy) models instead of direct ones")
    parser.add_argument("--multi-state", dest="multi_state", action="store_true",
                        help="the multi-state models (several state pairs) instead")
    parser.add_argument("--multi-state-order", dest="multi_state_order", action="store_true",
                        help="the multi-state models whose output state names sort in another"
                             " order than their input names (reproduce Triton's pairing by name"
                             " order)")
    parser.add_argument("--all", action="store_true",
                        help="every repository of the matrix under models_dir, plus manifest.json")
    parser.add_argument("--onnx_opset", type=int, default=DEFAULT_ONNX_OPSET,
                        help=f"ONNX default-domain opset (default {DEFAULT_ONNX_OPSET})")
    parser.add_argument("--onnx_ir_version", type=int, default=DEFAULT_ONNX_IR_VERSION,
                        help=f"ONNX IR version (default {DEFAULT_ONNX_IR_VERSION})")
    return parser


def select(args: argparse.Namespace, entries: List[Entry]) -> List[Entry]:
    """The matrix entries the upstream-style flags ask for."""
    backends = {b for flag, b in _BACKEND_FLAGS.items() if getattr(args, flag)}
    if not backends:
        raise SpecError("no backend selected; pass one or more of "
                        + ", ".join(f"--{f}" for f in _BACKEND_FLAGS))
    chosen = [e for e in entries if e.variant.backend in backends]
    if args.all:
        return chosen
    strategy = Strategy.OLDEST if args.dyna else Strategy.DIRECT
    chosen = [
        e for e in chosen
        if e.variant.variable == args.variable
        and e.variant.initial_state.value == args.initial_state
        and e.variant.strategy is strategy
        and e.variant.multi_state == (args.multi_state or args.multi_state_order)
        and e.variant.crossed_state_order == args.multi_state_order
    ]
    if not chosen:
        raise SpecError(
            f"no model matches backends {sorted(b.value for b in backends)} with"
            f" variable={args.variable}, initial-state={args.initial_state}, dyna={args.dyna},"
            f" multi-state={args.multi_state}, multi-state-order={args.multi_state_order};"
            " see configs/matrix.json for the combinations that exist"
        )
    return chosen


def _install(variant: Variant, options: BuildOptions, repository: pathlib.Path) -> pathlib.Path:
    """`install_model`, in a forked child for builders that set FORK_PER_MODEL.

    A model then equals the Bazel worker's, which builds it the same way
    (generators/fork_child.py).
    """
    fork = getattr(builder_for(variant.backend), "FORK_PER_MODEL", False)
    fork_child.call(lambda: install_model(variant, options, repository), fork=fork)
    return repository / variant.name


def generate(args: argparse.Namespace) -> int:
    """Write the selected models; returns the number written."""
    options = BuildOptions(onnx_opset=args.onnx_opset, onnx_ir_version=args.onnx_ir_version)
    entries = select(args, expand())
    for backend in sorted({e.variant.backend for e in entries}, key=lambda b: b.value):
        builder_for(backend)  # every framework present before anything is written
    check_output_dir(args.models_dir)
    started = time.monotonic()
    for index, entry in enumerate(entries, 1):
        repository = args.models_dir / entry.repository if args.all else args.models_dir
        path = _install(entry.variant, options, repository)
        sys.stderr.write(f"[{index}/{len(entries)}] {path}\n")
    if args.all:
        write_manifest(args.models_dir, entries)
    sys.stderr.write(f"generated {len(entries)} models in {time.monotonic() - started:.2f}s\n")
    return len(entries)


def main(argv: Optional[List[str]] = None) -> int:
    """Command-line entry; exit status 2 on any generator error."""
    args = _parser().parse_args(argv)
    try:
        generate(args)
    except GeneratorError as err:
        sys.stderr.write(f"error: {err}\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
