"""Writes one model directory: model files first, `config.pbtxt` last.

`write_model_dir` fills a given empty directory (a Bazel tree artifact).
`install_model` puts a model into a repository atomically: it is built in a
temporary sibling directory and renamed into place, so a model directory
appears whole or not at all, and only the model being generated is replaced.
"""

import os
import pathlib
import shutil
import tempfile

from generators.backends import builder_for
from generators.build_options import MODEL_VERSION, BuildOptions
from generators.errors import OutputDirError
from generators.model_config import build_config, config_text, initial_state_files
from generators.variant import InitialState, Variant


def write_model_dir(variant: Variant, options: BuildOptions, model_dir: pathlib.Path) -> None:
    """Write the whole model (version dir, initial state, config) into model_dir."""
    version_dir = model_dir / str(MODEL_VERSION)
    version_dir.mkdir(parents=True)
    builder_for(variant.backend).write_model(variant, options, version_dir)
    if variant.initial_state is InitialState.FILE:
        state_dir = model_dir / "initial_state"
        state_dir.mkdir()
        for name, data in initial_state_files(variant).items():
            (state_dir / name).write_bytes(data)
    # Last, so a polling server never sees a config without its model.
    (model_dir / "config.pbtxt").write_text(config_text(build_config(variant)))


def check_output_dir(path: pathlib.Path, create: bool = True) -> None:
    """Fail with a clear error unless path is (or can be made) a writable dir."""
    if path.exists() and not path.is_dir():
        raise OutputDirError(f"'{path}' is not a directory; pass a directory as --models_dir")
    if create:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise OutputDirError(
                f"cannot create '{path}' ({err.strerror}); pass a --models_dir you can write to"
            ) from None
    if not path.is_dir():
        raise OutputDirError(f"'{path}' is not a directory; pass a directory as --models_dir")
    if not os.access(path, os.W_OK | os.X_OK):
        raise OutputDirError(f"'{path}' is not writable; fix its permissions or pick another")


def install_model(variant: Variant, options: BuildOptions, repository: pathlib.Path) -> pathlib.Path:
    """Build a model beside its final place and rename it in; returns its path."""
    check_output_dir(repository)
    final = repository / variant.name
    staging = pathlib.Path(tempfile.mkdtemp(prefix=f".{variant.name}.", dir=repository))
    try:
        write_model_dir(variant, options, staging / "model")
        if final.exists():
            old = staging / "old"
            os.rename(final, old)
        os.rename(staging / "model", final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final
