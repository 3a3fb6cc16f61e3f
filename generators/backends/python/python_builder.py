"""Python-backend builder: copies one of two real model sources into a version dir.

Every python variant serves a linted and tested Triton python-backend model
that reads its tensor names, types, batching and initial state from the
model config at load time. Upstream's variants (string, bool-as-int32,
float32 and int32 models, several states, dyna, the single-buffer option)
serve `generators/backends/python/model.py`; the state-coverage variants
that it cannot serve (a state of another Triton type, dtype or dims:
`needs_state_coverage_model`) serve `state_coverage_model.py`, written as
`model.py`. Nothing is generated from a template: the build copies the
file byte for byte (contents only, no timestamps or mode bits), so a
model's digest depends only on which source it serves.
"""

import pathlib

from generators.build_options import BuildOptions
from generators.errors import BackendUnavailableError
from generators.variant import STATE_COVERAGE_DTYPES, Variant

# Not resolved: under Bazel the sources are the `data` files beside this module
# in the runfiles tree, not wherever the symlinks lead.
MODEL_SOURCE = pathlib.Path(__file__).absolute().parent / "model.py"
STATE_COVERAGE_SOURCE = MODEL_SOURCE.with_name("state_coverage_model.py")
MODEL_FILE = "model.py"


def needs_state_coverage_model(variant: Variant) -> bool:
    """Whether the variant's state is of a type, dtype or dims that model.py does not serve."""
    return (variant.dtype in STATE_COVERAGE_DTYPES or variant.state_type != variant.dtype
            or variant.state_layout != variant.shape)


def model_source(variant: Variant) -> pathlib.Path:
    """The source file a python variant serves as its `model.py`."""
    return STATE_COVERAGE_SOURCE if needs_state_coverage_model(variant) else MODEL_SOURCE


def write_model(variant: Variant, options: BuildOptions, version_dir: pathlib.Path) -> None:
    """Write `model.py` for a python variant into version_dir.

    Args:
        variant: the python variant (its config carries everything the model reads).
        options: build options (unused: the sources take no options).
        version_dir: existing, empty version directory of the model.

    Raises:
        BackendUnavailableError: when the model source is missing from this build.
    """
    del options  # the model reads everything from its config at load time
    source_path = model_source(variant)
    try:
        source = source_path.read_bytes()
    except OSError as err:
        raise BackendUnavailableError(
            f"python model source {source_path} is unreadable ({err.strerror}); the"
            " python_builder library must ship generators/backends/python/"
            f"{source_path.name} as data"
        ) from None
    (version_dir / MODEL_FILE).write_bytes(source)
