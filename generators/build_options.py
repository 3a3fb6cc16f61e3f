"""Generator-wide options that are not part of a variant (ONNX versions).

The ONNX opset and IR version are checked against the pinned `onnx`
package's own tables when `BuildOptions` is made: a value it does not know,
or an opset that needs a newer IR version than the one given, raises
`OptionError` before anything is written (an ONNX Runtime refuses to load
such a model). Which Triton release accepts which versions: README.md.
"""

import dataclasses

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


@dataclasses.dataclass(frozen=True, kw_only=True)
class BuildOptions:
    """Options every builder receives; defaults match the Bazel build."""

    onnx_opset: int = DEFAULT_ONNX_OPSET
    onnx_ir_version: int = DEFAULT_ONNX_IR_VERSION

    def __post_init__(self) -> None:
        """Reject ONNX versions the pinned onnx does not know or cannot combine."""
        if self.onnx_opset == GENERATOR_CHOOSES_OPSET and type(self.onnx_opset) is int:
            object.__setattr__(self, "onnx_opset", DEFAULT_ONNX_OPSET)
        for name in ("onnx_opset", "onnx_ir_version"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise OptionError(f"{name} is {value!r}; it must be an int")
        # The defaults are pinned (and proved valid by tests): importing onnx
        # for them would slow every non-ONNX build.
        if (self.onnx_opset, self.onnx_ir_version) != (DEFAULT_ONNX_OPSET,
                                                       DEFAULT_ONNX_IR_VERSION):
            check_onnx_versions(self.onnx_opset, self.onnx_ir_version)


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
    """Raise `OptionError` unless the pinned onnx knows both and the IR carries the opset."""
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
