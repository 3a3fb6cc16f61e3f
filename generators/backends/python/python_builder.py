"""Python-backend builder: copies the one real `model.py` into a version dir.

Every python variant serves the same source file,
`generators/backends/python/model.py`, a linted and tested Triton python-backend
model that reads its tensor names, types, batching and initial state from
the model config at load time. Nothing is generated from a template: the
build copies the file byte for byte (contents only, no timestamps or mode
bits), so its digest is the same for every variant and every build.
"""

import pathlib

from generators.build_options import BuildOptions
from generators.errors import BackendUnavailableError
from generators.variant import Variant

# Not resolved: under Bazel the source is the `data` file beside this module in
# the runfiles tree, not wherever the symlinks lead.
MODEL_SOURCE = pathlib.Path(__file__).absolute().parent / "model.py"
MODEL_FILE = "model.py"


def write_model(variant: Variant, options: BuildOptions, version_dir: pathlib.Path) -> None:
    """Write `model.py` for a python variant into version_dir.

    Args:
        variant: the python variant (its config carries everything the model reads).
        options: build options (unused: the source is the same for every variant).
        version_dir: existing, empty version directory of the model.

    Raises:
        BackendUnavailableError: when the model source is missing from this build.
    """
    del variant, options  # the model reads everything from its config at load time
    try:
        source = MODEL_SOURCE.read_bytes()
    except OSError as err:
        raise BackendUnavailableError(
            f"python model source {MODEL_SOURCE} is unreadable ({err.strerror}); the"
            " python_builder library must ship generators/backends/python/model.py as data"
        ) from None
    (version_dir / MODEL_FILE).write_bytes(source)
