"""How many models of each family every repository must hold: the one literal table.

`EXPECTED_MODELS` is typed by hand, never derived from configs/matrix.json
or a built manifest, so that losing a family's models from a repository
(a matrix edit, a builder that leaves a dtype out) fails a test instead of
shrinking what the tests drive. matrix_test compares the matrix's
expansion with it, each <backend>_contract_test its backend's built
models, and the real-server tests every repository they serve; "this
repository holds no model of family F" is a zero (an absent entry) here,
asserted like any other count.

Why the numbers are what they are: onnx, savedmodel and python build every
dtype (float32, int32, object, bool) batched and unbatched in the fixed
shape repositories and batched only in the variable-shape ones; libtorch
leaves out the batched string model (its backend cannot serve one); plans
are numeric only (float32, int32); the dyna repository holds int32 onnx and
plan models; every multi-state repository holds float32 and int32 models,
batched and unbatched, with 2 and 3 state pairs (8 per family); the
initial-state dims repository one batched int32 model per family.

The state-coverage repositories (docs/models.md, "Every state type") hold
the 13 state types, batched and unbatched (fixed and variable shape: 26)
or batched only (the zero and file initial states: 13), less the types a
family's real Triton backend refuses at load (generators/served_types.py):
onnx and savedmodel bfloat16 (24 and 12), libtorch bfloat16, uint16,
uint32 and uint64 (18 and 9), python none; the wider-state, state-shape and
single-buffer repositories 2 models batched and unbatched (4) per family;
the dyna families repository an int32 dyna model batched and unbatched for
libtorch, python and savedmodel; no plans (no TensorRT to measure on).
"""

import collections
from typing import Dict, Iterable, List, Mapping, Optional, Tuple

MULTI_STATE_REPOSITORIES = (
    "qa_multi_state_implicit_model_repository",
    "qa_multi_state_initial_state_file_implicit_model_repository",
    "qa_multi_state_order_implicit_model_repository",
)

# repository -> family -> number of models; a family absent from a row has none there.
EXPECTED_MODELS: Dict[str, Dict[str, int]] = {
    "qa_sequence_implicit_model_repository":
        {"libtorch": 7, "onnx": 8, "plan": 4, "python": 8, "savedmodel": 8},
    "qa_variable_sequence_implicit_model_repository":
        {"libtorch": 3, "onnx": 4, "plan": 2, "python": 4, "savedmodel": 4},
    "qa_sequence_initial_state_implicit_model_repository":
        {"libtorch": 7, "onnx": 8, "plan": 4, "python": 8, "savedmodel": 8},
    "qa_variable_sequence_initial_state_implicit_model_repository":
        {"libtorch": 3, "onnx": 4, "plan": 2, "python": 4, "savedmodel": 4},
    "qa_sequence_initial_state_file_implicit_model_repository":
        {"libtorch": 7, "onnx": 8, "plan": 4, "python": 8, "savedmodel": 8},
    "qa_variable_sequence_initial_state_file_implicit_model_repository":
        {"libtorch": 3, "onnx": 4, "plan": 2, "python": 4, "savedmodel": 4},
    "qa_dyna_sequence_implicit_model_repository":
        {"onnx": 2, "plan": 2},
    "qa_multi_state_implicit_model_repository":
        {"libtorch": 8, "onnx": 8, "plan": 8, "python": 8, "savedmodel": 8},
    "qa_multi_state_initial_state_file_implicit_model_repository":
        {"libtorch": 8, "onnx": 8, "plan": 8, "python": 8, "savedmodel": 8},
    "qa_multi_state_order_implicit_model_repository":
        {"libtorch": 8, "onnx": 8, "plan": 8, "python": 8, "savedmodel": 8},
    "qa_initial_state_dims_implicit_model_repository":
        {"libtorch": 1, "onnx": 1, "plan": 1, "python": 1, "savedmodel": 1},
    "qa_state_type_implicit_model_repository":
        {"libtorch": 18, "onnx": 24, "python": 26, "savedmodel": 24},
    "qa_variable_state_type_implicit_model_repository":
        {"libtorch": 18, "onnx": 24, "python": 26, "savedmodel": 24},
    "qa_state_type_initial_state_implicit_model_repository":
        {"libtorch": 9, "onnx": 12, "python": 13, "savedmodel": 12},
    "qa_state_type_initial_state_file_implicit_model_repository":
        {"libtorch": 9, "onnx": 12, "python": 13, "savedmodel": 12},
    "qa_wider_state_implicit_model_repository":
        {"libtorch": 4, "onnx": 4, "python": 4, "savedmodel": 4},
    "qa_state_shape_implicit_model_repository":
        {"libtorch": 4, "onnx": 4, "python": 4, "savedmodel": 4},
    "qa_same_buffer_implicit_model_repository":
        {"libtorch": 4, "onnx": 4, "python": 4, "savedmodel": 4},
    "qa_dyna_sequence_families_implicit_model_repository":
        {"libtorch": 2, "python": 2, "savedmodel": 2},
}

# The invalid-model repository (//models:invalid_repo, configs/invalid_models.json):
# family -> models Triton must refuse. Every family gets the five initial-state
# defects; onnx and plan the state's dtype and two names; libtorch its two
# naming and batching rules.
INVALID_REPOSITORY = "qa_invalid_implicit_model_repository"
EXPECTED_INVALID_MODELS: Dict[str, int] = {
    "libtorch": 7, "onnx": 8, "plan": 8, "python": 5, "savedmodel": 5,
}

Counts = Dict[Tuple[str, str], int]  # (repository, family) -> models


def expected(families: Optional[Iterable[str]] = None) -> Counts:
    """The table as (repository, family) -> count, for the given families (default all)."""
    wanted = None if families is None else set(families)
    return {(repository, family): count
            for repository, row in EXPECTED_MODELS.items()
            for family, count in row.items() if wanted is None or family in wanted}


def in_repository(repository: str, families: Iterable[str]) -> Dict[str, int]:
    """The table's row of `repository` (family -> count), for those of `families` it holds."""
    row = EXPECTED_MODELS.get(repository, {})
    return {family: row[family] for family in sorted(set(families)) if family in row}


def multi_state_count(family: str) -> int:
    """How many multi-state models of `family` the table gives (over the multi-state repositories)."""
    return sum(EXPECTED_MODELS[r].get(family, 0) for r in MULTI_STATE_REPOSITORIES)


def count(pairs: Iterable[Tuple[str, str]]) -> Counts:
    """(repository, family) pairs, one per model -> how many models each pair has."""
    return dict(collections.Counter(pairs))


def manifest_counts(entries: Iterable[Mapping]) -> Counts:
    """The (repository, family) counts of a built manifest's `models` entries."""
    return count((e["repository"], e["variant"]["backend"]) for e in entries)


def mismatches(built: Counts, families: Iterable[str]) -> List[str]:
    """One line per (repository, family) of `families` whose built count is not the table's.

    Empty when the built models of those families are exactly the table's.
    Families outside `families` are not looked at (a tree built for some
    families only is judged on those).
    """
    families = set(families)
    want = expected(families)
    got = {key: n for key, n in built.items() if key[1] in families}
    return [f"{repository}: {family}: {got.get((repository, family), 0)} model(s) built,"
            f" {want.get((repository, family), 0)} expected (tests/expected_models.py)"
            for repository, family in sorted(set(want) | set(got))
            if got.get((repository, family), 0) != want.get((repository, family), 0)]
