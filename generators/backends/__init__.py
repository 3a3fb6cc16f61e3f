"""Registry of backend builders: `Backend -> module` with a `write_model`.

Each backend lives in its own package, `generators/backends/<backend>/`
(builder, generator binary, requirement set). Modules are imported on first
use, so generating ONNX models never imports TensorFlow, TensorRT or torch, and an
environment that lacks a backend's framework fails with a clear error
naming the requirement set to install, not with a traceback.
"""

import importlib
from types import ModuleType

from generators.errors import BackendUnavailableError
from generators.variant import Backend

BUILDER_MODULES = {
    Backend.ONNX: "generators.backends.onnx.onnx_builder",
    Backend.SAVEDMODEL: "generators.backends.savedmodel.savedmodel_builder",
    Backend.PYTHON: "generators.backends.python.python_builder",
    Backend.PLAN: "generators.backends.plan.plan_builder",
    Backend.LIBTORCH: "generators.backends.libtorch.libtorch_builder",
}


def requirement_set(backend: Backend) -> str:
    """Path, from the repository root, of a backend's hashed lock."""
    return f"generators/backends/{backend.value}/requirements_lock.txt"


def builder_for(backend: Backend) -> ModuleType:
    """The builder module of a backend.

    It exposes `write_model`, and may expose `check_available()`, which raises
    BackendUnavailableError when something the builder needs beyond its Python
    packages (a GPU) is missing; the CLI calls it before writing anything.

    Raises:
        BackendUnavailableError: the builder imports a package this Python
            environment does not have.
    """
    try:
        return importlib.import_module(BUILDER_MODULES[backend])
    except ModuleNotFoundError as err:
        if (err.name or "").split(".")[0] == "generators":
            raise
        raise BackendUnavailableError(
            f"the {backend.value} builder needs the Python package '{err.name}', which this"
            f" environment lacks; install the {backend.value} requirement set:"
            f" pip install --require-hashes --no-deps -r {requirement_set(backend)}"
        ) from None
