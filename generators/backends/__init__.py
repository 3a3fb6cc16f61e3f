"""Registry of backend builders: `Backend -> module` with a `write_model`.

Modules are imported on first use, so generating ONNX models never imports
TensorFlow or TensorRT.
"""

import importlib
from types import ModuleType

from generators.variant import Backend

BUILDER_MODULES = {
    Backend.ONNX: "generators.backends.onnx.onnx_builder",
    Backend.SAVEDMODEL: "generators.backends.savedmodel.savedmodel_builder",
    Backend.PYTHON: "generators.backends.python.python_builder",
    Backend.PLAN: "generators.backends.plan.plan_builder",
}


def builder_for(backend: Backend) -> ModuleType:
    """The builder module of a backend (exposes `write_model`)."""
    return importlib.import_module(BUILDER_MODULES[backend])
