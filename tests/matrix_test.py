"""Unit tests of the matrix expansion (generators/matrix.py, configs/matrix.json).

The models per repository and family are compared with the literal table
of tests/expected_models.py, for every family.
"""

import copy
import unittest

from generators.errors import SpecError
from generators.matrix import expand, load_matrix
from generators.variant import Backend
from tests import expected_models


class ExpansionTest(unittest.TestCase):
    """The checked-in matrix yields upstream's repositories and names."""

    def test_models_per_repository_and_family(self):
        """Every family's models per repository are the literal table's (tests/expected_models.py)."""
        built = expected_models.count((e.repository, e.variant.backend.value) for e in expand())
        self.assertEqual(expected_models.mismatches(built, [b.value for b in Backend]), [])

    def test_a_family_removed_from_a_repository_fails(self):
        """Dropping savedmodel from the multi-state repositories is caught, model by model."""
        matrix = copy.deepcopy(load_matrix())
        for repository in matrix["repositories"]:
            if repository["name"] in expected_models.MULTI_STATE_REPOSITORIES:
                repository["backends"].remove("savedmodel")
        built = expected_models.count((e.repository, e.variant.backend.value) for e in expand(matrix))
        self.assertEqual(expected_models.mismatches(built, ["savedmodel"]), [
            f"{r}: savedmodel: 0 model(s) built, 8 expected (tests/expected_models.py)"
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
        for entry in expand():
            if entry.variant.variable:
                self.assertGreater(entry.variant.max_batch, 0, entry.variant.name)

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
