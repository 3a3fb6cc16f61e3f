"""Triton's `ModelConfig` schema without importing Triton's gRPC client.

The generated `model_config_pb2` module ships inside `tritonclient.grpc`,
whose package `__init__` imports grpc and `tritonclient.utils` (with
ml_dtypes): about 70 ms of a generator run that needs none of them. The
module itself depends on protobuf alone, so it is loaded here from its file
under its own dotted name. It is registered in `sys.modules` under that
name, so a later `import tritonclient.grpc` (the e2e clients) finds the same
module instead of registering `model_config.proto` a second time.
"""

import importlib.util
import os
import sys
from types import ModuleType

from generators.errors import GeneratorError

MODULE_NAME = "tritonclient.grpc.model_config_pb2"


class SchemaUnavailableError(GeneratorError):
    """The tritonclient package that carries Triton's config schema is missing."""


def _schema_path() -> str:
    spec = importlib.util.find_spec("tritonclient")
    if spec is None or not spec.submodule_search_locations:
        raise SchemaUnavailableError(
            "tritonclient is not installed: Triton's ModelConfig schema "
            "(tritonclient/grpc/model_config_pb2.py) comes from it; install "
            "third_party/python/core/requirements_lock.txt"
        )
    for location in spec.submodule_search_locations:
        path = os.path.join(location, "grpc", "model_config_pb2.py")
        if os.path.isfile(path):
            return path
    raise SchemaUnavailableError(
        "tritonclient has no grpc/model_config_pb2.py; install the pinned "
        "tritonclient from third_party/python/core/requirements_lock.txt"
    )


def load_model_config_pb2() -> ModuleType:
    """Returns `tritonclient.grpc.model_config_pb2`, loading only that file."""
    loaded = sys.modules.get(MODULE_NAME)
    if loaded is not None:
        return loaded
    spec = importlib.util.spec_from_file_location(MODULE_NAME, _schema_path())
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE_NAME] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[MODULE_NAME]
        raise
    return module


model_config_pb2 = load_model_config_pb2()
