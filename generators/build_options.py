"""Generator-wide options that are not part of a variant (ONNX versions).

The ONNX opset and IR version are checked against the pinned `onnx`
package's own tables when `BuildOptions` is made: a value it does not know,
an opset that needs a newer IR version than the one given (an ONNX Runtime
refuses to load such a model), or an opset older than an operator our ONNX
graphs use (onnx's operator registry, `onnx.defs`, says since when each
exists) raises `OptionError` before anything is written. The Bazel
generator, the standalone CLI and the Python API all make their options
here. Which Triton release accepts which versions: docs/models.md, "ONNX versions".
"""

import functools
from typing import Dict, FrozenSet, NamedTuple

from generators.errors import OptionError

# Triton 24.10 (server 2.51) ships ONNX Runtime 1.19, which accepts at most
# IR 10 / opset 21; IR 8 / opset 17 also loads on much older releases.
DEFAULT_ONNX_OPSET = 17
DEFAULT_ONNX_IR_VERSION = 8
# Upstream's `--onnx_opset=0` (its pipeline's default, ONNX_OPSET=0): "let the
# generator choose". Here that choice is DEFAULT_ONNX_OPSET, which loads in
# the targeted Triton; the IR version stays whatever was given.
GENERATOR_CHOOSES_OPSET = 0
MODEL_VERSION = 1


class _OnnxVersions(NamedTuple):
    """The fields of `BuildOptions`."""

    onnx_opset: int
    onnx_ir_version: int


class BuildOptions(_OnnxVersions):
    """Options every builder receives; defaults match the Bazel build.

    Immutable and compared by value, keyword arguments only. A NamedTuple,
    not a frozen dataclass: every generator process makes this class at
    start-up, where compiling a dataclass's generated methods costs about
    half a millisecond.
    """

    __slots__ = ()

    def __new__(cls, *, onnx_opset: int = DEFAULT_ONNX_OPSET,
                onnx_ir_version: int = DEFAULT_ONNX_IR_VERSION) -> "BuildOptions":
        """Reject ONNX versions the pinned onnx does not know or cannot combine."""
        if onnx_opset == GENERATOR_CHOOSES_OPSET and type(onnx_opset) is int:
            onnx_opset = DEFAULT_ONNX_OPSET
        for name, value in (("onnx_opset", onnx_opset), ("onnx_ir_version", onnx_ir_version)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise OptionError(f"{name} is {value!r}; it must be an int")
        # The defaults are pinned (and proved valid by tests): importing onnx
        # for them would slow every non-ONNX build.
        if (onnx_opset, onnx_ir_version) != (DEFAULT_ONNX_OPSET, DEFAULT_ONNX_IR_VERSION):
            check_onnx_versions(onnx_opset, onnx_ir_version)
        return super().__new__(cls, onnx_opset, onnx_ir_version)


def _ranges(values) -> str:
    """Sorted ints as runs: [1, 5, 6, 7] -> "1, 5 to 7"."""
    runs = []
    for value in sorted(values):
        if runs and value == runs[-1][1] + 1:
            runs[-1][1] = value
        else:
            runs.append([value, value])
    return ", ".join(str(a) if a == b else f"{a} to {b}" for a, b in runs)


def check_onnx_versions(opset: int, ir_version: int) -> None:
    """Raise `OptionError` unless the pinned onnx knows both and they fit each other and our graphs.

    The IR version must carry the opset, and the opset must hold every
    operator the ONNX builder uses.
    """
    import onnx  # here, not at the top: only non-default versions need it
    from onnx import helper

    # Released default-domain opsets -> the IR version each needs at least.
    min_ir = {v: ir for (domain, v), ir in helper.OP_SET_ID_VERSION_MAP.items()
              if domain == "ai.onnx"}
    known_ir = {row[1] for row in helper.VERSION_TABLE} | {onnx.IR_VERSION}
    pinned = f"the pinned onnx {onnx.__version__}"
    if opset not in min_ir:
        raise OptionError(
            f"onnx_opset {opset}: {pinned} knows default-domain opsets {_ranges(min_ir)};"
            f" pass one of those, or {GENERATOR_CHOOSES_OPSET} for the generator's choice"
            f" ({DEFAULT_ONNX_OPSET}; Triton 24.10's ONNX Runtime 1.19 loads at most 21)")
    if ir_version not in known_ir:
        raise OptionError(
            f"onnx_ir_version {ir_version}: {pinned} knows IR versions {_ranges(known_ir)};"
            f" pass one of those (default {DEFAULT_ONNX_IR_VERSION}; Triton 24.10's ONNX"
            " Runtime 1.19 loads at most 10)")
    if min_ir[opset] > ir_version:
        fitting = max((o for o, ir in min_ir.items() if ir <= ir_version), default=None)
        lower = f" or lower onnx_opset to {fitting} or below" if fitting else ""
        raise OptionError(
            f"onnx_opset {opset} needs IR version {min_ir[opset]} or newer (onnx's"
            f" OP_SET_ID_VERSION_MAP), but onnx_ir_version is {ir_version}; raise"
            f" onnx_ir_version to {min_ir[opset]}{lower}")
    _check_graph_operators(opset)


@functools.lru_cache(maxsize=None)
def first_opsets(op_types: FrozenSet[str]) -> Dict[str, int]:
    """The oldest default-domain opset of each operator, from onnx's registry (onnx.defs).

    An operator the registry does not know maps to 0.
    """
    from onnx import defs

    first: Dict[str, int] = {}
    for schema in defs.get_all_schemas_with_history():
        if schema.domain in ("", "ai.onnx") and schema.name in op_types:
            first[schema.name] = min(first.get(schema.name, schema.since_version),
                                     schema.since_version)
    return {op: first.get(op, 0) for op in op_types}


def _check_graph_operators(opset: int) -> None:
    """Raise `OptionError` unless every operator our ONNX graphs use exists at `opset`."""
    # Here, not at the top: the onnx builder imports this module.
    from generators.backends import builder_for
    from generators.variant import Backend

    first = first_opsets(builder_for(Backend.ONNX).op_types())
    unknown = sorted(op for op, since in first.items() if not since)
    if unknown:
        raise OptionError(
            f"onnx_opset {opset}: the ONNX builder uses {', '.join(unknown)}, which the pinned"
            " onnx's operator registry (onnx.defs) does not hold; keep the builder to"
            " default-domain operators")
    too_new = sorted((since, op) for op, since in first.items() if since > opset)
    if too_new:
        needed = too_new[-1][0]
        ops = ", ".join(f"{op} (opset {since} on)" for since, op in too_new)
        raise OptionError(
            f"onnx_opset {opset} is older than the operators our ONNX graphs use: {ops}, per"
            f" onnx's operator registry (onnx.defs); pass onnx_opset {needed} or newer, or"
            f" {GENERATOR_CHOOSES_OPSET} for the generator's choice ({DEFAULT_ONNX_OPSET})")
