"""Standalone generator with upstream's flags; works without Bazel.

Drop-in for Triton's `qa/common/gen_qa_implicit_models.py`. Upstream's
pipeline (`qa/common/gen_qa_model_repository`) runs it by file path, with
this folder as its `SRCDIR`, from any working directory and with no
PYTHONPATH:

    python3 $SRCDIR/gen_qa_implicit_models.py --onnx --onnx_opset=0 \
        [--variable] [--initial-state zero|file] --models_dir=DIR

`python3 -m generators.gen_qa_implicit_models ...` from the checkout root is
the same program. It writes the models of one upstream repository straight
into DIR, adding or replacing only those models. The dyna (oldest-strategy)
models come from the sibling `gen_qa_dyna_sequence_implicit_models.py`, as
upstream's do, or from `--dyna` here; `--all` writes every repository of the
matrix under DIR plus a manifest, exactly as `bazel build
//models:implicit_repo` lays them out. Models are byte-identical to the Bazel
build's. Flags upstream parses and never acts on are accepted with a note;
any other unknown flag is an error. Progress goes to stderr.

A run writes all its models or none: they are built in a hidden folder
inside DIR and renamed into place once every one is built. Any error (a bad
flag, an ONNX opset older than our graphs' operators, a builder's own
failure) is one line on stderr and exit status 2, and DIR is left as it was.
"""

import gc
import importlib.util
import pathlib
import sys

if __name__ == "__main__":  # a program run: no collection while it imports (see `generate`)
    gc.disable()

if not __package__:  # run by file path: put the checkout, not this folder, on sys.path
    _HELPER = pathlib.Path(__file__).resolve().with_name("run_by_path.py")
    if not _HELPER.is_file():
        sys.exit(f"error: {__file__} has no run_by_path.py beside it: run the script in the"
                 " checkout's generators/ folder (or a symlink to it), not a copy")
    _SPEC = importlib.util.spec_from_file_location("<run_by_path>", _HELPER)
    _SPEC.loader.exec_module(importlib.util.module_from_spec(_SPEC))

import argparse  # noqa: E402 - after the path fix above
import time  # noqa: E402
from typing import Dict, FrozenSet, List, NamedTuple, Optional, Tuple  # noqa: E402

from generators.backends import builder_for  # noqa: E402
from generators.build_options import (  # noqa: E402
    DEFAULT_ONNX_IR_VERSION,
    DEFAULT_ONNX_OPSET,
    GENERATOR_CHOOSES_OPSET,
    BuildOptions,
)
from generators.errors import GeneratorError, ModelBuildError, SpecError  # noqa: E402
from generators.matrix import Entry, expand  # noqa: E402
from generators.variant import Backend, InitialState, Strategy, Variant  # noqa: E402
from generators.writer import RepositoryUpdate, write_model_dir  # noqa: E402

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


_NO_GRAPHDEF = "no TensorFlow GraphDef models"
_NO_SHAPE_IO = "no plans with shape-tensor I/O"
_NO_OPENVINO = "no OpenVINO models"


class Script(NamedTuple):
    """One of upstream's two implicit-state scripts, as far as its flags go.

    A NamedTuple, not a frozen dataclass: it is made at every run's start,
    where compiling a dataclass's generated methods costs most of a millisecond.
    """

    name: str  # upstream's file name, also this script's
    description: str
    backend_flags: Tuple[str, ...]  # the backend flags it acts on
    ignored: Dict[str, str]  # flags upstream parses and never acts on -> "no ... models"
    dyna: bool  # writes the dyna (oldest-strategy) models only


IMPLICIT = Script(
    name="gen_qa_implicit_models.py",
    description="Triton QA's implicit-state models, with upstream's flags (no Bazel needed).",
    backend_flags=tuple(_BACKEND_FLAGS),
    ignored={
        "--graphdef": _NO_GRAPHDEF,
        "--tensorrt-shape-io": _NO_SHAPE_IO,
        "--openvino": _NO_OPENVINO,
        "--ensemble": "no ensemble models",
    },
    dyna=False,
)
DYNA = Script(
    name="gen_qa_dyna_sequence_implicit_models.py",
    description="Triton QA's dyna (oldest-strategy) implicit-state models, with upstream's flags.",
    backend_flags=("onnx", "tensorrt"),
    ignored={
        "--graphdef": _NO_GRAPHDEF,
        "--savedmodel": "no SavedModel models (its dyna models are ONNX and TensorRT only)",
        "--libtorch": "no libtorch models (its dyna models are ONNX and TensorRT only)",
        "--tensorrt-shape-io": _NO_SHAPE_IO,
        "--openvino": _NO_OPENVINO,
    },
    dyna=True,
)

# Upstream main's PyTorch step also runs the implicit script with --torch-aoti.
TORCH_AOTI_ERROR = (
    "--torch-aoti: upstream main's AOTInductor PyTorch models (model.pt2) are not generated"
    " yet: this project targets Triton r24.10 (server 2.51), whose pytorch backend loads"
    " TorchScript only, so no server here could load or verify them; generate the PyTorch"
    " models with --libtorch (TorchScript model.pt) and drop this line. Nothing was written."
)


def _ignored_dest(flag: str) -> str:
    return "ignored_" + flag.lstrip("-").replace("-", "_")


def _parser(script: Script) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=script.name, description=script.description)
    parser.add_argument("--models_dir", type=pathlib.Path, required=True,
                        help="top-level model directory (created if missing)")
    for flag in script.backend_flags:
        parser.add_argument(f"--{flag}", action="store_true",
                            help=f"generate {_BACKEND_FLAGS[flag].value} models")
    parser.add_argument("--variable", action="store_true",
                        help="variable shape [-1] (batched models only)")
    if not script.dyna:
        parser.add_argument("--initial-state", dest="initial_state", default="none",
                            choices=[s.value for s in InitialState],
                            help="initial state of INPUT_STATE")
        parser.add_argument("--dyna", action="store_true",
                            help="dyna (oldest-strategy) models instead of direct ones")
        parser.add_argument("--multi-state", dest="multi_state", action="store_true",
                            help="the multi-state models (several state pairs) instead")
        parser.add_argument("--multi-state-order", dest="multi_state_order", action="store_true",
                            help="the multi-state models whose output state names sort in another"
                                 " order than their input names (reproduce Triton's pairing by"
                                 " name order)")
        parser.add_argument("--initial-state-dims", dest="initial_state_dims",
                            action="store_true",
                            help="the variable-shape models whose file initial state has its own"
                                 " dims [3] (reproduce Triton ignoring initial_state.dims under a"
                                 " variable state); implies --variable --initial-state file")
        parser.add_argument("--all", action="store_true",
                            help="every repository of the matrix under models_dir, plus"
                                 " manifest.json")
        parser.add_argument("--torch-aoti", dest="torch_aoti", action="store_true",
                            help="upstream main's AOTInductor PyTorch models: not generated yet"
                                 " (an error)")
    parser.add_argument("--onnx_opset", type=int, default=DEFAULT_ONNX_OPSET,
                        help=f"ONNX default-domain opset (default {DEFAULT_ONNX_OPSET});"
                             f" {GENERATOR_CHOOSES_OPSET}, as upstream's pipeline passes, means"
                             " the generator's choice, the default")
    parser.add_argument("--onnx_ir_version", type=int, default=DEFAULT_ONNX_IR_VERSION,
                        help=f"ONNX IR version (default {DEFAULT_ONNX_IR_VERSION})")
    for flag, writes in script.ignored.items():
        parser.add_argument(flag, dest=_ignored_dest(flag), action="store_true",
                            help=f"accepted as upstream's {script.name} accepts it; no effect"
                                 f" ({writes})")
    parser.set_defaults(script=script, dyna=script.dyna, initial_state="none", multi_state=False,
                        multi_state_order=False, initial_state_dims=False, all=False,
                        torch_aoti=False,
                        **{f: False for f in _BACKEND_FLAGS if f not in script.backend_flags})
    return parser


def selected_backends(args: argparse.Namespace) -> FrozenSet[Backend]:
    """The backends whose flags the command line passes."""
    return frozenset(b for flag, b in _BACKEND_FLAGS.items() if getattr(args, flag))


def select(args: argparse.Namespace, entries: List[Entry]) -> List[Entry]:
    """The matrix entries the upstream-style flags ask for."""
    backends = selected_backends(args)
    if not backends:
        raise SpecError("no backend selected; pass one or more of "
                        + ", ".join(f"--{f}" for f in args.script.backend_flags))
    if args.dyna and args.variable and not args.all:
        raise SpecError(
            "--variable with the dyna models: upstream's dyna script would write int32 [-1]"
            " dyna models, but no repository Triton's QA serves holds them (its pipeline never"
            " passes --variable to that script), so this project does not build them; drop"
            " --variable")
    chosen = [e for e in entries if e.variant.backend in backends]
    if args.all:
        return chosen
    chosen = [e for e in chosen if e.flags_select]
    strategy = Strategy.OLDEST if args.dyna else Strategy.DIRECT
    dims = args.initial_state_dims
    variable = args.variable or dims
    initial_state = InitialState.FILE.value if dims else args.initial_state
    chosen = [
        e for e in chosen
        if e.variant.variable == variable
        and e.variant.initial_state.value == initial_state
        and e.variant.strategy is strategy
        and e.variant.multi_state == (args.multi_state or args.multi_state_order)
        and e.variant.crossed_state_order == args.multi_state_order
        and bool(e.variant.initial_state_dims) == dims
    ]
    if not chosen:
        raise SpecError(
            f"no model matches backends {sorted(b.value for b in backends)} with"
            f" variable={variable}, initial-state={initial_state}, dyna={args.dyna},"
            f" multi-state={args.multi_state}, multi-state-order={args.multi_state_order},"
            f" initial-state-dims={dims}; see configs/matrix.json for the combinations that exist"
        )
    return chosen


def _build(variant: Variant, options: BuildOptions, model_dir: pathlib.Path, position: str,
           models_dir: pathlib.Path) -> None:
    """`write_model_dir`, in a forked child for builders that set FORK_PER_MODEL.

    A model then equals the Bazel worker's, which builds it the same way
    (generators/fork_child.py). Any error becomes a ModelBuildError naming
    the model.
    """
    fork = getattr(builder_for(variant.backend), "FORK_PER_MODEL", False)
    try:
        if fork:
            from generators import fork_child  # here, not at the top: only TensorFlow's builder forks
            fork_child.call(lambda: write_model_dir(variant, options, model_dir), fork=True)
        else:
            write_model_dir(variant, options, model_dir)
    except Exception as err:  # noqa: BLE001 - a builder's own error (OSError, onnx's checker)
        cause = str(err) if isinstance(err, GeneratorError) else f"{type(err).__name__}: {err}"
        raise ModelBuildError(
            f"{variant.name} ({position}): {cause}; nothing was installed and '{models_dir}' is"
            " as it was before the run; fix the cause and rerun") from err


def generate(args: argparse.Namespace) -> int:
    """Write the selected models, all or none; returns the number written."""
    options = BuildOptions(onnx_opset=args.onnx_opset, onnx_ir_version=args.onnx_ir_version)
    entries = select(args, expand(backends=selected_backends(args),
                                  flags_selected_only=not args.all))
    for backend in sorted({e.variant.backend for e in entries}, key=lambda b: b.value):
        # Every framework (and a plan's GPU) present before anything is written.
        getattr(builder_for(backend), "check_available", lambda: None)()
    if not gc.isenabled():
        # A program run imports with the collector off: collections would only walk, again
        # and again, the hundreds of thousands of objects the imports (onnx, torch) make and
        # keep until exit, a sixth of a pipeline line's time. Freeze those out of every later
        # collection and collect as usual while building.
        gc.freeze()
        gc.enable()
    started = time.monotonic()
    with RepositoryUpdate(args.models_dir) as update:
        for index, entry in enumerate(entries, 1):
            relative = f"{entry.repository}/{entry.variant.name}" if args.all else entry.variant.name
            _build(entry.variant, options, update.stage(relative), f"model {index} of {len(entries)}",
                   args.models_dir)
            sys.stderr.write(f"[{index}/{len(entries)}] {args.models_dir / relative}\n")
        if args.all:  # the staging tree has the repository's layout, so its manifest is the same
            from generators.manifest import MANIFEST_NAME, write_manifest  # here: only --all writes one
            write_manifest(update.stage(MANIFEST_NAME).parent, entries)
    sys.stderr.write(f"generated {len(entries)} models in {time.monotonic() - started:.2f}s\n")
    return len(entries)


def _one_line(message: str) -> str:
    """A message whose lines (onnx's checker writes several) are joined into one."""
    return " ".join(line.strip() for line in message.splitlines() if line.strip())


def main(argv: Optional[List[str]] = None, script: Script = IMPLICIT) -> int:
    """Command-line entry of either script; exit status 2 on any error, nothing written."""
    parser = _parser(script)
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        sys.stderr.write(
            f"error: unknown argument(s) {' '.join(unknown)}: neither upstream's {script.name}"
            " nor this one takes them; see --help for the flags\n")
        return 2
    if args.torch_aoti:
        sys.stderr.write(f"error: {TORCH_AOTI_ERROR}\n")
        return 2
    ignored = [flag for flag in script.ignored if getattr(args, _ignored_dest(flag))]
    for flag in ignored:
        sys.stderr.write(f"note: {flag} has no effect: upstream's {script.name} accepts it and"
                         f" writes {script.ignored[flag]}\n")
    if ignored and not any(getattr(args, flag) for flag in _BACKEND_FLAGS):
        sys.stderr.write("note: nothing to generate (no backend flag); nothing written\n")
        return 0
    try:
        generate(args)
    except GeneratorError as err:
        sys.stderr.write(f"error: {_one_line(str(err))}\n")
        return 2
    except OSError as err:  # e.g. the staging folder or the manifest on a full disk
        sys.stderr.write(f"error: {_one_line(str(err))}; '{args.models_dir}' is as it was before"
                         " the run; free space or fix permissions and rerun\n")
        return 2
    except Exception as err:  # noqa: BLE001 - one line, never a traceback; models_dir restored
        sys.stderr.write(f"error: unexpected {type(err).__name__}: {_one_line(str(err))}; this is"
                         " a bug of the generator: report it with the command line\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
