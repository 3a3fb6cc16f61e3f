"""Triton's own CPU backends for the pinned server: the `--config=real_backends` installation.

The pinned nvidia-pytriton wheel bundles tritonserver 2.51 with the python
backend only. `../shared/triton/backends` holds Triton's onnxruntime,
tensorflow and pytorch backends built for CPU from r24.10 for that server;
Bazel links them into `@triton_backends` (third_party/triton) and, under
`--config=real_backends`, hands them to the real-server e2e as data with
`IMPLICIT_REAL_BACKENDS=1`. `installation` then lays out one backend folder
of its own (a symlink per Triton backend folder, plus the wheel's python
backend as verification.triton_server assembles it).

The tensorflow and pytorch backends need TensorFlow 2.21.0's and torch
2.5.1's shared libraries, which the wheel's server does not carry:
`framework_library_dirs` finds them in the project's own savedmodel and
libtorch environments (their locks pin exactly those versions), so nothing
more is downloaded. They go on the server's LD_LIBRARY_PATH only when the
pinned wheel's server serves a folder holding those backends; a user's
Triton installation (NVIDIA's container) brings its own.
"""

import argparse
import dataclasses
import os
import pathlib
import subprocess
from typing import Dict, List, Mapping, Optional

from verification.installation import Installation, InstallationError
from verification.triton_server import python_backend_directory

REAL_BACKENDS_VAR = "IMPLICIT_REAL_BACKENDS"
# "<package>=<launcher>,...": the environments' launchers, as runfiles paths.
FRAMEWORK_PYTHONS_VAR = "IMPLICIT_FRAMEWORK_PYTHONS"
INSTALLATION_VARS = ("TRITON_HOME", "TRITON_SERVER", "TRITON_BACKEND_DIR")
# The folders of @triton_backends, each with the library Triton loads from it.
REAL_BACKEND_FOLDERS = {
    "onnxruntime": "libtriton_onnxruntime.so",
    "pytorch": "libtriton_pytorch.so",
    "tensorflow": "libtriton_tensorflow.so",
}


@dataclasses.dataclass(frozen=True)
class FrameworkLibraries:
    """Where a Triton backend folder's framework keeps its shared libraries.

    Attributes:
        package: the Python package that ships them (in one of our environments).
        subfolder: the folder inside the package that holds them.
    """

    package: str
    library: str
    subfolder: str = ""


FRAMEWORKS: Dict[str, FrameworkLibraries] = {
    "tensorflow": FrameworkLibraries("tensorflow", "libtensorflow_cc.so.2"),
    "pytorch": FrameworkLibraries("torch", "libtorch_cpu.so", "lib"),
}
_FIND_PACKAGE = ("import importlib.util, sys; spec = importlib.util.find_spec(sys.argv[1]);"
                 " print(spec.submodule_search_locations[0] if spec else '')")


def add_tool_arguments(parser) -> None:
    """The options every `bazel run` real-server tool takes (its BUILD target sets the hidden one)."""
    parser.add_argument("--real-backends", action="store_true",
                        help="the pinned server with Triton's CPU onnxruntime, tensorflow and"
                             " pytorch backends (../shared/triton/backends) and the wheel's python")
    parser.add_argument("--framework-pythons", help=argparse.SUPPRESS)


def use_tool_arguments(args, environ=os.environ) -> None:
    """Hand a tool's --real-backends and --framework-pythons to `requested` and the installation."""
    if args.real_backends:
        environ[REAL_BACKENDS_VAR] = "1"
    if args.framework_pythons:
        environ[FRAMEWORK_PYTHONS_VAR] = args.framework_pythons


def requested(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether `--config=real_backends` asked for this installation."""
    return environ.get(REAL_BACKENDS_VAR, "") == "1"


def runfile(path: str) -> Optional[pathlib.Path]:
    """A runfiles path of the main workspace (`external/<repository>/...`), or None.

    Under `bazel test` from TEST_SRCDIR, under `bazel run` from the working
    directory (the workspace's runfiles folder).
    """
    root = pathlib.Path(os.environ.get("TEST_SRCDIR") or os.environ.get("RUNFILES_DIR") or ".")
    workspace = os.environ.get("TEST_WORKSPACE", "triton_implicit_models")
    for base in (root / workspace, root):
        candidate = base / path
        if candidate.exists():
            return candidate
    return None


def linked_backends() -> Dict[str, pathlib.Path]:
    """Each folder of @triton_backends -> the real folder it links.

    Raises:
        InstallationError: the repository is the stand-in (no folder beside the checkout).
    """
    absent = runfile("external/triton_backends/absent")
    if absent is not None:
        raise InstallationError(
            f"--config=real_backends: {absent.read_text().strip()}; put Triton's CPU backends"
            " at ../shared/triton/backends beside the checkout (or name a folder holding"
            " onnxruntime/, tensorflow/ and pytorch/ with --repo_env=TRITON_REAL_BACKENDS_DIR=)")
    found, missing = {}, []
    for folder, library in REAL_BACKEND_FOLDERS.items():
        path = runfile(f"external/triton_backends/{folder}/{library}")
        if path is None:
            missing.append(f"{folder}/{library}")
        else:
            found[folder] = path.resolve().parent
    if missing:
        raise InstallationError(
            f"--config=real_backends: the test's data lacks @triton_backends {missing}; the"
            " target must list @triton_backends//:backends in data under this configuration")
    return found


def layout(root: pathlib.Path) -> pathlib.Path:
    """Make root: the wheel's python backend plus a symlink per Triton CPU backend folder."""
    folder = python_backend_directory(root)
    for name, target in linked_backends().items():
        (folder / name).symlink_to(target, target_is_directory=True)
    return folder


def installation(root: pathlib.Path, environ: Mapping[str, str] = os.environ) -> Installation:
    """The pinned wheel's server with a backend folder laid out under root.

    Raises:
        InstallationError: an installation variable is set too (they would disagree).
    """
    named = [v for v in INSTALLATION_VARS if environ.get(v)]
    if named:
        raise InstallationError(
            f"--config=real_backends lays out its own backend folder for the pinned server,"
            f" but {', '.join(named)} also name an installation; drop one of the two")
    return Installation(backend_dir=layout(root),
                        source="the pinned nvidia-pytriton wheel's tritonserver with Triton's"
                               " CPU onnxruntime, tensorflow and pytorch backends"
                               " (--config=real_backends) and the wheel's python backend")


def _launchers(environ: Mapping[str, str]) -> Dict[str, str]:
    """Map each package to its launcher path, from FRAMEWORK_PYTHONS_VAR."""
    text = environ.get(FRAMEWORK_PYTHONS_VAR, "").replace(",", " ")
    pairs = [item.split("=", 1) for item in text.split()]
    return {package: path for package, path in pairs}


def framework_library_dirs(backend_dir: pathlib.Path,
                           environ: Mapping[str, str] = os.environ) -> List[str]:
    """The framework library folders the backends in `backend_dir` need, from our environments.

    Raises:
        InstallationError: a needed environment is not among the target's data,
            or does not hold the framework.
    """
    launchers = _launchers(environ)
    dirs = []
    for folder, framework in sorted(FRAMEWORKS.items()):
        if not (pathlib.Path(backend_dir) / folder).is_dir():
            continue
        launcher = launchers.get(framework.package)
        path = (runfile(launcher) or pathlib.Path(launcher)) if launcher else None
        if path is None or not path.exists():
            raise InstallationError(
                f"backend folder {folder}/ needs {framework.package}'s libraries, but"
                f" {FRAMEWORK_PYTHONS_VAR} names no environment holding {framework.package}"
                f" ({environ.get(FRAMEWORK_PYTHONS_VAR, '')!r}); the target's data and env"
                " must list that environment's launcher")
        # Without PYTHONPATH: Bazel's stub puts every runfiles repository on
        # it, and @triton_backends' tensorflow/ folder would pass for the package.
        clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        found = subprocess.run(  # noqa: S603 - our own launcher, fixed argv
            [str(path), "-c", _FIND_PACKAGE, framework.package], capture_output=True,
            text=True, timeout=120, check=False, env=clean).stdout.strip()
        folder_path = pathlib.Path(found) / framework.subfolder if found else None
        if folder_path is None or not (folder_path / framework.library).is_file():
            raise InstallationError(
                f"{path} has no {framework.package} package holding {framework.library}"
                f" (found: {found or 'nothing'}); backend folder {folder}/ cannot be served"
                " without its framework's libraries")
        dirs.append(str(folder_path))
    return dirs
