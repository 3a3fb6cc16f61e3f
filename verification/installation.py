"""Which tritonserver the real-server tests run, and with which backend folder.

By default the server bundled in the pinned nvidia-pytriton wheel, with a
backend folder assembled from its python backend (verification.triton_server).
A user's Triton installation replaces it:

- `TRITON_HOME` (NVIDIA's container: `/opt/tritonserver`): the server is
  `$TRITON_HOME/bin/tritonserver`, the backends `$TRITON_HOME/backends`;
- `TRITON_SERVER` (a server binary) and/or `TRITON_BACKEND_DIR` (a folder of
  `<backend>/` folders), each overriding its half; either alone keeps the
  pinned wheel's other half.

`has_gpu` says whether the machine has an NVIDIA GPU (override with
`IMPLICIT_E2E_GPU=0|1`); without one, KIND_GPU instance groups are served as
KIND_CPU from the server's private copy of the repository (`serve_on_cpu`).
"""

import dataclasses
import os
import pathlib
import re
import subprocess
from typing import Mapping, Optional, Tuple

_GPU_KIND = re.compile(r"\bkind:\s*KIND_GPU\b")


class InstallationError(ValueError):
    """A Triton installation given in the environment or on the command line is unusable."""


@dataclasses.dataclass(frozen=True)
class Installation:
    """A tritonserver binary and its backend folder.

    Attributes:
        binary: the server binary; None means the pinned wheel's.
        backend_dir: the --backend-directory; None means one assembled from
            the pinned wheel's python backend.
        source: how it was chosen, for the test output.
        library_path: folders put first on the pinned server's LD_LIBRARY_PATH
            (the frameworks Triton's CPU tensorflow and pytorch backends need,
            verification.real_backends); a user's installation runs as it is.
    """

    binary: Optional[pathlib.Path] = None
    backend_dir: Optional[pathlib.Path] = None
    source: str = "the pinned nvidia-pytriton wheel's tritonserver and python backend"
    library_path: Tuple[str, ...] = ()

    @property
    def pinned_binary(self):
        """Whether the server is the pinned wheel's (it needs the wheel's environment)."""
        return self.binary is None


def _existing(path, what, variable, fix):
    path = pathlib.Path(path).expanduser()
    if not path.exists():
        raise InstallationError(f"{variable}={path}: {what} {path} does not exist; {fix}")
    return path.resolve()


def from_values(home=None, server=None, backend_dir=None) -> Installation:
    """The installation named by a Triton home and/or a server and a backend folder.

    Raises:
        InstallationError: a named path does not exist (the message names it and the fix).
    """
    binary = backends = None
    parts = []
    if home:
        home = _existing(home, "Triton home", "TRITON_HOME",
                         "give the folder holding bin/tritonserver and backends/"
                         " (NVIDIA's container: /opt/tritonserver)")
        binary = _existing(home / "bin" / "tritonserver", "server binary", "TRITON_HOME",
                           "TRITON_HOME must hold bin/tritonserver")
        backends = _existing(home / "backends", "backend folder", "TRITON_HOME",
                             "TRITON_HOME must hold backends/")
        parts.append(f"TRITON_HOME={home}")
    if server:
        binary = _existing(server, "server binary", "TRITON_SERVER",
                           "give the path of a tritonserver executable")
        parts.append(f"TRITON_SERVER={binary}")
    if backend_dir:
        backends = _existing(backend_dir, "backend folder", "TRITON_BACKEND_DIR",
                             "give a folder of <backend>/ folders (e.g. python/, onnxruntime/)")
        parts.append(f"TRITON_BACKEND_DIR={backends}")
    if not parts:
        return Installation()
    if binary is None:
        parts.append("the pinned wheel's tritonserver")
    if backends is None:
        parts.append("the pinned wheel's python backend")
    return Installation(binary=binary, backend_dir=backends, source=", ".join(parts))


def from_environment(environ: Mapping[str, str] = os.environ) -> Installation:
    """The installation TRITON_HOME / TRITON_SERVER / TRITON_BACKEND_DIR name (default: pinned)."""
    return from_values(environ.get("TRITON_HOME"), environ.get("TRITON_SERVER"),
                       environ.get("TRITON_BACKEND_DIR"))


def has_gpu(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether an NVIDIA GPU is usable here (IMPLICIT_E2E_GPU=0|1 overrides the probe)."""
    forced = environ.get("IMPLICIT_E2E_GPU")
    if forced in ("0", "1"):
        return forced == "1"
    if forced:
        raise InstallationError(f"IMPLICIT_E2E_GPU={forced!r}: use 0 or 1, or leave it unset")
    gpus = pathlib.Path("/proc/driver/nvidia/gpus")
    if gpus.is_dir() and any(gpus.iterdir()):
        return True
    try:
        probe = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True,  # noqa: S603, S607
                               timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0 and "GPU" in probe.stdout


def serve_on_cpu(repository: pathlib.Path) -> int:
    """Rewrite every `kind: KIND_GPU` of a (private copy of a) repository to KIND_CPU.

    Returns:
        How many model configs were rewritten.
    """
    rewritten = 0
    for config in sorted(pathlib.Path(repository).glob("*/config.pbtxt")):
        text = config.read_text()
        new = _GPU_KIND.sub("kind: KIND_CPU", text)
        if new != text:
            config.chmod(0o644)
            config.write_text(new)
            rewritten += 1
    return rewritten
