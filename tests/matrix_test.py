"""Unit tests of the matrix expansion (generators/matrix.py, configs/matrix.json).

The models per repository and family are compared with the literal table
of tests/expected_models.py, for every family.
"""

import copy
import unittest

from generators import served_types
from generators.errors import SpecError
from generators.matrix import expand, load_matrix
from generators.variant import UPSTREAM_DTYPES, Backend
from tests import expected_models

# Upstream's repositories (docs/models.md): upstream's dtypes, none of the
# state-coverage fields, and the models they have always had.
UPSTREAM_REPOSITORIES = frozenset({
    "qa_sequence_implicit_model_repository",
    "qa_variable_sequence_implicit_model_repository",
    "qa_sequence_initial_state_implicit_model_repository",
    "qa_variable_sequence_initial_state_implicit_model_repository",
    "qa_sequence_initial_state_file_implicit_model_repository",
    "qa_variable_sequence_initial_state_file_implicit_model_repository",
    "qa_dyna_sequence_implicit_model_repository",
})
VARIABLE_STATE_TYPE_REPOSITORY = "qa_variable_state_type_implicit_model_repository"
STATE_TYPE_REPOSITORIES = (
    "qa_state_type_implicit_model_repository", VARIABLE_STATE_TYPE_REPOSITORY,
    "qa_state_type_initial_state_implicit_model_repository",
    "qa_state_type_initial_state_file_implicit_model_repository",
)
EVERY_STATE_TYPE = ["bfloat16", "bool", "boolean", "float16", "float32", "float64", "int16",
                    "int32", "int64", "int8", "uint16", "uint32", "uint64", "uint8"]


class ExpansionTest(unittest.TestCase):
    """The checked-in matrix yields upstream's repositories and names."""

    def test_models_per_repository_and_family(self):
        """Every family's models per repository are the literal table's (tests/expected_models.py)."""
        built = expected_models.count((e.repository, e.variant.backend.value) for e in expand())
        self.assertEqual(expected_models.mismatches(built, [b.value for b in Backend]), [])

    def test_a_family_removed_from_a_repository_fails(self):
        """Dropping savedmodel from the multi-state repositories is caught, model by model."""
        matrix = copy.deepcopy(load_matrix())
        before = set(expected_models.mismatches(expected_models.count(
            (e.repository, e.variant.backend.value) for e in expand(matrix)), ["savedmodel"]))
        for repository in matrix["repositories"]:
            if repository["name"] in expected_models.MULTI_STATE_REPOSITORIES:
                repository["backends"].remove("savedmodel")
        built = expected_models.count((e.repository, e.variant.backend.value) for e in expand(matrix))
        self.assertEqual(
            [line for line in expected_models.mismatches(built, ["savedmodel"]) if line not in before],
            [f"{r}: savedmodel: 0 model(s) built, 8 expected (tests/expected_models.py)"
             for r in sorted(expected_models.MULTI_STATE_REPOSITORIES)])

    def test_libtorch_strings_only_unbatched(self):
        names = sorted({e.variant.name for e in expand() if e.variant.backend.value == "libtorch"
                        and e.variant.dtype.value == "object"})
        self.assertEqual(names, ["libtorch_nobatch_sequence_object"])

    def test_dyna_names(self):
        names = sorted(e.variant.name for e in expand()
                       if e.repository == "qa_dyna_sequence_implicit_model_repository"
                       and e.variant.backend.value == "onnx")
        self.assertEqual(names, ["onnx_dyna_sequence_int32", "onnx_nobatch_dyna_sequence_int32"])

    def test_plan_only_numeric(self):
        for entry in expand():
            if entry.variant.backend.value == "plan":
                self.assertIn(entry.variant.dtype.value, ("float32", "int32"))

    def test_variable_repositories_are_batched_only(self):
        """Upstream's variable repositories are batched; the variable state-type one has both."""
        unbatched = {e.repository for e in expand() if e.variant.variable and not e.variant.max_batch}
        self.assertEqual(unbatched, {VARIABLE_STATE_TYPE_REPOSITORY})

    def test_upstream_repositories_unchanged(self):
        """Upstream's repositories hold upstream's dtypes only and no state-coverage field."""
        for entry in expand():
            if entry.repository in UPSTREAM_REPOSITORIES:
                with self.subTest(model=f"{entry.repository}/{entry.variant.name}"):
                    self.assertIn(entry.variant.dtype, UPSTREAM_DTYPES)
                    self.assertLessEqual(set(entry.variant.to_spec()), {
                        "backend", "dtype", "shape", "max_batch", "initial_state", "strategy"})
        dyna = sorted((e.variant.backend.value, e.variant.name) for e in expand()
                      if e.repository == "qa_dyna_sequence_implicit_model_repository")
        self.assertEqual([b for b, _ in dyna], ["onnx", "onnx", "plan", "plan"])

    def test_state_type_repositories_hold_every_type(self):
        """Every state type (and upstream's four) per family, less the measured exclusions."""
        for repository in STATE_TYPE_REPOSITORIES:
            for family in ("onnx", "savedmodel", "python", "libtorch"):
                with self.subTest(repository=repository, family=family):
                    dtypes = sorted({e.variant.dtype.value for e in expand()
                                     if e.repository == repository
                                     and e.variant.backend.value == family})
                    want = [d for d in EVERY_STATE_TYPE if d not in ("bool",)
                            and served_types.exclusion(family, d) is None]
                    self.assertEqual(dtypes, want)
            self.assertFalse([e for e in expand() if e.repository == repository
                              and e.variant.backend is Backend.PLAN])

    def test_state_coverage_names(self):
        """The wider, shaped, single-buffer and dyna-family repositories' onnx / libtorch names."""
        cases = {
            ("qa_wider_state_implicit_model_repository", "onnx"): [
                "onnx_nobatch_sequence_float16_state_float32",
                "onnx_nobatch_sequence_int32_state_int64",
                "onnx_sequence_float16_state_float32", "onnx_sequence_int32_state_int64"],
            ("qa_state_shape_implicit_model_repository", "libtorch"): [
                "libtorch_nobatch_sequence_int32_state_scalar",
                "libtorch_nobatch_sequence_int32_state_sum_count",
                "libtorch_sequence_int32_state_scalar", "libtorch_sequence_int32_state_sum_count"],
            ("qa_same_buffer_implicit_model_repository", "onnx"): [
                "onnx_nobatch_sequence_float32", "onnx_nobatch_sequence_int32",
                "onnx_sequence_float32", "onnx_sequence_int32"],
            ("qa_dyna_sequence_families_implicit_model_repository", "libtorch"): [
                "libtorch_dyna_sequence_int32", "libtorch_nobatch_dyna_sequence_int32"],
            ("qa_dyna_sequence_families_implicit_model_repository", "onnx"): [],
        }
        for (repository, family), names in cases.items():
            with self.subTest(repository=repository, family=family):
                self.assertEqual(sorted(e.variant.name for e in expand()
                                        if e.repository == repository
                                        and e.variant.backend.value == family), names)

    def test_duplicates_rejected(self):
        matrix = copy.deepcopy(load_matrix())
        matrix["repositories"].append(matrix["repositories"][0])
        with self.assertRaisesRegex(SpecError, "same model twice"):
            expand(matrix)

    def test_unknown_repository_key_rejected(self):
        matrix = copy.deepcopy(load_matrix())
        matrix["repositories"][0]["colour"] = "red"
        with self.assertRaisesRegex(SpecError, r"unknown keys \['colour'\]"):
            expand(matrix)


if __name__ == "__main__":
    unittest.main()
