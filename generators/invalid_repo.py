"""Bazel tool: build the repository of models Triton must refuse (`//models:invalid_repo`).

    invalid_repo --out DIR [--invalid-models configs/invalid_models.json]
        --base REPOSITORY/MODEL MODEL_DIR [--base ...]

For every invalid model of generators/invalid_models.py whose base model
directory is given, copies the base to DIR/<repository>/<family>_<defect>,
applies the one defect (`DEFECTS`: a change to the `ModelConfig` proto or
to the initial-state file), names the model after its folder, and writes
the config last. DIR/manifest.json lists each model with its family, defect,
base and the `mentions` a load failure must hold, placeholders resolved
against the mutated config. Bases not given (plans without a GPU) leave
their models out, and the manifest says which were built.
"""

import argparse
import json
import pathlib
import re
import sys
from typing import Callable, Dict, List, Optional

from generators.assemble_repo import copy_tree
from generators.errors import SpecError
from generators.invalid_models import INVALID_MODELS_PATH, Defect, InvalidModel, expand_invalid, load
from generators.model_config import config_text, parse_config
from generators.triton_schema import model_config_pb2 as mc

ABSENT_INPUT_STATE = "ABSENT_INPUT_STATE"
ABSENT_OUTPUT_STATE = "ABSENT_OUTPUT_STATE"
ABSENT_DATA_FILE = "absent_state_data"
SHORT_FILE_BYTES = 2  # half of one INT32 element
WRONG_DTYPE = mc.DataType.Value("TYPE_FP32")
MANIFEST = "manifest.json"

Mutation = Callable[[mc.ModelConfig, pathlib.Path], None]


def _state(config: mc.ModelConfig) -> "mc.ModelSequenceBatching.State":
    return config.sequence_batching.state[0]


def _initial(config: mc.ModelConfig) -> "mc.ModelSequenceBatching.InitialState":
    state = _state(config)
    if len(state.initial_state) != 1:
        raise SpecError(f"model '{config.name}': this defect changes the initial state, but the"
                        " base has none; give a base from a file initial-state repository")
    return state.initial_state[0]


def _state_dtype(config, _):
    _state(config).data_type = WRONG_DTYPE


def _state_input_name(config, _):
    _state(config).input_name = ABSENT_INPUT_STATE


def _state_output_name(config, _):
    _state(config).output_name = ABSENT_OUTPUT_STATE


def _initial_state_dtype(config, _):
    _initial(config).data_type = WRONG_DTYPE


def _initial_state_variable_dims(config, _):
    initial = _initial(config)
    del initial.dims[:]
    initial.dims.append(-1)


def _two_initial_states(config, _):
    first = _initial(config)
    second = _state(config).initial_state.add()
    second.CopyFrom(first)
    second.name = "second init"


def _data_file_missing(config, _):
    _initial(config).data_file = ABSENT_DATA_FILE


def _data_file_short(config, model_dir):
    path = model_dir / "initial_state" / _initial(config).data_file
    path.write_bytes(path.read_bytes()[:SHORT_FILE_BYTES])


def _unindexed_state_names(config, _):
    state = _state(config)
    state.input_name = re.sub(r"__\d+$", "", state.input_name)
    state.output_name = re.sub(r"__\d+$", "", state.output_name)


def _batched_string_state(config, _):
    if _state(config).data_type != mc.DataType.Value("TYPE_STRING") or config.max_batch_size:
        raise SpecError(f"model '{config.name}': batched_string_state needs an unbatched string"
                        " base model")
    config.max_batch_size = 8


DEFECTS: Dict[Defect, Mutation] = {
    Defect.STATE_DTYPE: _state_dtype,
    Defect.STATE_INPUT_NAME: _state_input_name,
    Defect.STATE_OUTPUT_NAME: _state_output_name,
    Defect.INITIAL_STATE_DTYPE: _initial_state_dtype,
    Defect.INITIAL_STATE_VARIABLE_DIMS: _initial_state_variable_dims,
    Defect.TWO_INITIAL_STATES: _two_initial_states,
    Defect.DATA_FILE_MISSING: _data_file_missing,
    Defect.DATA_FILE_SHORT: _data_file_short,
    Defect.UNINDEXED_STATE_NAMES: _unindexed_state_names,
    Defect.BATCHED_STRING_STATE: _batched_string_state,
}


def resolve(mentions, config: mc.ModelConfig) -> List[str]:
    """The mentions with {state}, {output} and {file} taken from the (mutated) config."""
    state = _state(config)
    values = {"state": state.input_name, "output": state.output_name,
              "file": state.initial_state[0].data_file if state.initial_state else ""}
    resolved = []
    for text in mentions:
        for key, value in values.items():
            if "{" + key + "}" in text and not value:
                raise SpecError(f"mention {text!r} of model '{config.name}' needs a {key}, but"
                                " its config has none")
            text = text.replace("{" + key + "}", value)
        resolved.append(text)
    return resolved


def build(model: InvalidModel, base_dir: pathlib.Path, out: pathlib.Path) -> dict:
    """Copy the base, apply the defect, write the config last; the manifest entry."""
    config = parse_config((base_dir / "config.pbtxt").read_text())
    model_dir = out / model.name
    copy_tree(base_dir, model_dir)
    (model_dir / "config.pbtxt").unlink()
    config.name = model.name
    DEFECTS[model.defect](config, model_dir)
    (model_dir / "config.pbtxt").write_text(config_text(config))
    entry = model.to_json()
    entry["mentions"] = resolve(model.mentions, config)
    return entry


def build_repository(out: pathlib.Path, base_dirs: Dict[str, pathlib.Path],
                     data: Optional[dict] = None) -> dict:
    """Every invalid model whose base is given; returns the manifest written to out."""
    repository, models = expand_invalid(data)
    unknown = sorted(set(base_dirs) - {m.base for m in models})
    if unknown:
        raise SpecError(f"--base {unknown}: no invalid model is built from them")
    entries = [build(m, base_dirs[m.base], out / repository)
               for m in models if m.base in base_dirs]
    manifest = {"repository": repository, "models": entries,
                "not_built": sorted(m.name for m in models if m.base not in base_dirs)}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def main(argv: Optional[List[str]] = None) -> int:
    """Command-line entry (argv may come from a Bazel param file, `@file`)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     fromfile_prefix_chars="@")
    parser.add_argument("--out", required=True, type=pathlib.Path)
    parser.add_argument("--invalid-models", type=pathlib.Path, default=INVALID_MODELS_PATH)
    parser.add_argument("--base", nargs=2, action="append", default=[],
                        metavar=("REPOSITORY/MODEL", "MODEL_DIR"))
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        build_repository(args.out, {b: pathlib.Path(d) for b, d in args.base},
                         load(args.invalid_models))
    except SpecError as err:
        sys.stderr.write(f"error: {err}\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
