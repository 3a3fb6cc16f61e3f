"""Which model family each Triton backend serves, and which families a server can test.

`FAMILIES` is the one table: model family (the model-name prefix,
generators.variant.Backend) -> the folder Triton loads it from under its
`--backend-directory` (`<triton>/backends/<folder>/`) and the contract rules
where the families differ (CONTRACT.md section 3, docs/models.md "String states").
Adding a family is one entry. `tensor_name` applies a family's tensor
naming rule: Triton's pytorch backend binds tensors by a `__<position>`
suffix (ENVIRONMENT.md: INPUT__0, OUTPUT__0, OUTPUT_STATE__1; a further state
pair k takes OUTPUT_STATE_<k>__<1+k>, docs/models.md "libtorch models").

`discover` reads a server's backend folder and says, for every family of
this project, whether it is tested or why not (backend folder absent, GPU
needed, not asked for); a backend folder no family uses is listed as
unknown, never ignored. `format_discovery` renders that as the lines the
e2e test and `//verification:verify` print.
"""

import dataclasses
import pathlib
from typing import Dict, Iterable, Optional, Tuple

# How a family's string (TYPE_STRING) models answer (CONTRACT.md section 3).
STRINGS_SUM = "sum"  # decimal text of the running sum; a string state starts empty (0)
STRINGS_IDENTITY = "identity"  # OUTPUT = INPUT, no accumulation (upstream's ONNX quirk)
STRINGS_NONE = "none"  # the family has no string models


@dataclasses.dataclass(frozen=True)
class Family:
    """One model family as a Triton server serves it.

    Attributes:
        backend: folder name under the server's backend directory.
        strings: STRINGS_SUM, STRINGS_IDENTITY or STRINGS_NONE.
        gpu_only: whether its models run only on a GPU (TensorRT plans).
        indexed_names: whether tensor names carry the `__<position>` suffix.
        keeps_own_state: whether its models carry their running state
            themselves (the backend never hands OUTPUT_STATE back), so how
            Triton pairs states cannot touch them.
        not_decimal: text the server's error holds when a summing string
            model is sent a string that is no decimal integer ("x1"): the
            python model's own message, the framework's parse error for
            TensorFlow (StringToNumber) and TorchScript (int() on a str
            fails in std::stoll). Required for STRINGS_SUM, empty otherwise.
    """

    backend: str
    strings: str
    gpu_only: bool = False
    indexed_names: bool = False
    keeps_own_state: bool = False
    not_decimal: str = ""

    def __post_init__(self):
        """A summing string family must say how its refusal reads; no other family may."""
        if (self.strings == STRINGS_SUM) != bool(self.not_decimal):
            raise ValueError(
                f"Family(backend={self.backend!r}): not_decimal={self.not_decimal!r} with"
                f" strings={self.strings!r}; give the text of the server's error for a"
                f" non-decimal string exactly when strings is {STRINGS_SUM!r}")


FAMILIES: Dict[str, Family] = {
    "onnx": Family(backend="onnxruntime", strings=STRINGS_IDENTITY),
    "savedmodel": Family(backend="tensorflow", strings=STRINGS_SUM, keeps_own_state=True,
                         not_decimal="StringToNumberOp could not correctly convert string"),
    "python": Family(backend="python", strings=STRINGS_SUM, keeps_own_state=True,
                     not_decimal="is not a decimal integer"),
    "plan": Family(backend="tensorrt", strings=STRINGS_NONE, gpu_only=True),
    "libtorch": Family(backend="pytorch", strings=STRINGS_SUM, indexed_names=True,
                       not_decimal="stoll"),
}


def tensor_name(family_name: str, base: str, position: int) -> str:
    """The name a client uses for tensor `base` of a family's model at `position`.

    Positions: INPUT 0 and OUTPUT 0; state output k (config order) 1 + k.
    """
    return f"{base}__{position}" if family(family_name).indexed_names else base


def state_output_name(family_name: str, pair: int, base: Optional[str] = None) -> str:
    """The output name of state pair `pair` (libtorch indexed).

    `base` is the pair's own output name (a model's manifest holds it);
    by default the multi-state repositories' OUTPUT_STATE, OUTPUT_STATE_1, ...
    """
    base = base or ("OUTPUT_STATE" if pair == 0 else f"OUTPUT_STATE_{pair}")
    return tensor_name(family_name, base, 1 + pair)


def family(name: str) -> Family:
    """The table row of a family; a family missing from the table is an error naming the fix."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise KeyError(
            f"model family {name!r} has no entry in verification/families.py FAMILIES (known:"
            f" {sorted(FAMILIES)}); add one naming its Triton backend folder and string rule"
        ) from None


@dataclasses.dataclass(frozen=True)
class Discovery:
    """What a server's backend folder lets the tests cover.

    Attributes:
        backend_dir: the folder that was read.
        gpu: whether a GPU was found.
        tested: families whose models will be served and checked.
        not_tested: family -> why it is not tested.
        unknown: backend folders no family of this project is served by.
    """

    backend_dir: str
    gpu: bool
    tested: Tuple[str, ...]
    not_tested: Dict[str, str]
    unknown: Tuple[str, ...]


def backend_folders(backend_dir: pathlib.Path) -> Tuple[str, ...]:
    """The backend folder names of a server's backend directory (directories only).

    Raises:
        FileNotFoundError: the directory does not exist (message names the fix).
    """
    backend_dir = pathlib.Path(backend_dir)
    if not backend_dir.is_dir():
        raise FileNotFoundError(
            f"Triton backend directory {backend_dir} does not exist; give the folder that"
            " holds backends/<name>/ (NVIDIA's container: /opt/tritonserver/backends)")
    return tuple(sorted(p.name for p in backend_dir.iterdir() if p.is_dir()))


def discover(backend_dir: pathlib.Path, gpu: bool, families: Iterable[str] = tuple(FAMILIES),
             wanted: Optional[Iterable[str]] = None) -> Discovery:
    """Decide, for each family, whether this server tests it.

    Args:
        backend_dir: the server's --backend-directory.
        gpu: whether a GPU is present (plans need one).
        families: the families to account for (default: every family in FAMILIES).
        wanted: the families asked for (None: all); the others are "not asked for".
    """
    folders = backend_folders(backend_dir)
    wanted = None if wanted is None else set(wanted)
    tested, not_tested = [], {}
    for name in families:
        row = family(name)
        if wanted is not None and name not in wanted:
            not_tested[name] = "not asked for (--family / E2E_FAMILIES)"
        elif row.backend not in folders:
            not_tested[name] = (f"backend folder '{row.backend}/' absent from {backend_dir}"
                                f" (it holds: {', '.join(folders) or 'nothing'})")
        elif row.gpu_only and not gpu:
            not_tested[name] = "needs a GPU (TensorRT plans run only on one); none found"
        else:
            tested.append(name)
    served_by_someone = {row.backend for row in FAMILIES.values()}
    unknown = tuple(f for f in folders if f not in served_by_someone)
    return Discovery(str(backend_dir), gpu, tuple(tested), not_tested, unknown)


def format_discovery(found: Discovery) -> str:
    """Lines saying what is tested, what is not and why, and the unknown backend folders."""
    lines = [f"backend directory {found.backend_dir}; GPU: {'yes' if found.gpu else 'no'}",
             f"families tested: {', '.join(found.tested) or 'none'}"]
    lines += [f"family {name}: NOT TESTED: {why}" for name, why in found.not_tested.items()]
    lines += [f"backend folder '{name}/': UNKNOWN to these tests, no model family of this"
              " project is served by it (verification/families.py FAMILIES); not verified"
              for name in found.unknown]
    return "\n".join(lines)
