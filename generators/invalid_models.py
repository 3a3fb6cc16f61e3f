"""Expands `configs/invalid_models.json`: the models Triton must refuse, one defect each.

Each defect names the families it applies to and a base model of the
variant matrix (`<repository>/<model>`, `{family}` filled in); an invalid
model is that base with the one defect applied (generators/invalid_repo.py)
and is named `<family>_<defect>`. `expand_invalid` checks every base against the
matrix's expansion (generators/matrix.py), so a renamed base fails here,
naming it, and never at build time. `mentions` are the texts a load failure
must hold to name the problem (verification/invalid_models.py), with
`{state}`, `{output}` and `{file}` standing for the mutated config's state
input name, state output name and data file.

Standard library only: Bazel's repository rule runs `main` with a bare
interpreter to write `INVALID_BASES` (the base models to build) for
`//models:invalid_repo`.
"""

import argparse
import dataclasses
import enum
import json
import pathlib
import sys
from typing import Dict, List, Mapping, Optional, Tuple

from generators import matrix
from generators.errors import SpecError
from generators.variant import Backend

INVALID_MODELS_PATH = (pathlib.Path(__file__).resolve().parent.parent / "configs"
                       / "invalid_models.json")
_TOP_KEYS = {"comment", "repository", "defects"}
_DEFECT_KEYS = {"name", "what", "families", "base", "mentions"}
PLACEHOLDERS = ("{state}", "{output}", "{file}")


class Defect(str, enum.Enum):
    """The one thing wrong with an invalid model (generators/invalid_repo.py applies it)."""

    STATE_DTYPE = "state_dtype"
    STATE_INPUT_NAME = "state_input_name"
    STATE_OUTPUT_NAME = "state_output_name"
    INITIAL_STATE_DTYPE = "initial_state_dtype"
    INITIAL_STATE_VARIABLE_DIMS = "initial_state_variable_dims"
    TWO_INITIAL_STATES = "two_initial_states"
    DATA_FILE_MISSING = "data_file_missing"
    DATA_FILE_SHORT = "data_file_short"
    UNINDEXED_STATE_NAMES = "unindexed_state_names"
    BATCHED_STRING_STATE = "batched_string_state"


@dataclasses.dataclass(frozen=True, kw_only=True)
class InvalidModel:
    """One model of the invalid repository.

    Attributes:
        name: `<family>_<defect>`.
        family: the model family (generators.variant.Backend value).
        defect: what is wrong with it.
        what: the defect in words.
        base: the matrix model it is made from, `<repository>/<model>`.
        gpu_only: whether the base needs a GPU to build (plans).
        mentions: texts a load failure must hold, placeholders unresolved.
    """

    name: str
    family: str
    defect: Defect
    what: str
    base: str
    gpu_only: bool
    mentions: Tuple[str, ...]

    def to_json(self) -> dict:
        """The manifest form (generators/invalid_repo.py adds the resolved names)."""
        return {"name": self.name, "family": self.family, "defect": self.defect.value,
                "what": self.what, "base": self.base, "mentions": list(self.mentions)}


def load(path: pathlib.Path = INVALID_MODELS_PATH) -> dict:
    """Read the file; a missing key or an unknown one is an error naming it."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise SpecError(f"cannot read {path}: {err}") from None
    unknown, missing = sorted(set(data) - _TOP_KEYS), sorted({"repository", "defects"} - set(data))
    if unknown or missing:
        raise SpecError(f"{path}: unknown keys {unknown}, missing keys {missing}; the file holds"
                        f" {sorted(_TOP_KEYS)}")
    return data


def _defect_models(entry: Mapping, bases: Mapping[str, bool]) -> List[InvalidModel]:
    unknown, missing = sorted(set(entry) - _DEFECT_KEYS), sorted(_DEFECT_KEYS - set(entry))
    if unknown or missing:
        raise SpecError(f"invalid model defect {entry.get('name')!r}: unknown keys {unknown},"
                        f" missing keys {missing}; each defect has {sorted(_DEFECT_KEYS)}")
    try:
        defect = Defect(entry["name"])
    except ValueError:
        raise SpecError(f"defect {entry['name']!r} is not known; known defects:"
                        f" {', '.join(d.value for d in Defect)}") from None
    models = []
    for family in entry["families"]:
        Backend(family)  # an unknown family raises, naming the valid ones
        base = entry["base"].format(family=family)
        if base not in bases:
            raise SpecError(f"defect {defect.value}: base model {base!r} is not in the variant"
                            " matrix (configs/matrix.json); name a <repository>/<model> it builds")
        models.append(InvalidModel(name=f"{family}_{defect.value}", family=family, defect=defect,
                                   what=entry["what"], base=base, gpu_only=bases[base],
                                   mentions=tuple(entry["mentions"])))
    return models


def expand_invalid(data: Optional[Mapping] = None) -> Tuple[str, List[InvalidModel]]:
    """(repository name, every invalid model) of the file, in a stable order."""
    data = load() if data is None else data
    bases = {f"{e.repository}/{e.variant.name}": e.variant.gpu_only for e in matrix.expand()}
    models = [m for entry in data["defects"] for m in _defect_models(entry, bases)]
    names = [m.name for m in models]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise SpecError(f"invalid models {repeated} are listed twice; each family and defect once")
    return data["repository"], sorted(models, key=lambda m: m.name)


def bases(models: List[InvalidModel]) -> Dict[str, bool]:
    """Each distinct base model -> whether it needs a GPU."""
    return {m.base: m.gpu_only for m in models}


def main(argv: Optional[List[str]] = None) -> int:
    """Print `INVALID_REPOSITORY` and `INVALID_BASES` as a Starlark file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invalid-models", type=pathlib.Path, default=INVALID_MODELS_PATH)
    args = parser.parse_args(argv)
    repository, models = expand_invalid(load(args.invalid_models))
    sys.stdout.write('"""Generated from configs/invalid_models.json by generators/invalid_models.py."""'
                     "\n\n")
    sys.stdout.write(f"INVALID_REPOSITORY = {repository!r}\n\n")
    sys.stdout.write("INVALID_BASES = [\n")
    for base, gpu_only in sorted(bases(models).items()):
        sys.stdout.write(f"    {{'base': {base!r}, 'gpu_only': {gpu_only!r}}},\n")
    sys.stdout.write("]\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
