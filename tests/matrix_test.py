"""Unit tests of the matrix expansion (generators/matrix.py, configs/matrix.json)."""

import copy
import unittest

from generators.errors import SpecError
from generators.matrix import expand, load_matrix

UPSTREAM_ONNX = {
    "qa_sequence_implicit_model_repository": 8,
    "qa_variable_sequence_implicit_model_repository": 4,
    "qa_sequence_initial_state_implicit_model_repository": 8,
    "qa_variable_sequence_initial_state_implicit_model_repository": 4,
    "qa_sequence_initial_state_file_implicit_model_repository": 8,
    "qa_variable_sequence_initial_state_file_implicit_model_repository": 4,
    "qa_dyna_sequence_implicit_model_repository": 2,
    # Ours: 2 dtypes x batch/nobatch x 2 and 3 state pairs.
    "qa_multi_state_implicit_model_repository": 8,
    "qa_multi_state_initial_state_file_implicit_model_repository": 8,
    "qa_multi_state_order_implicit_model_repository": 8,
}


# libtorch: as onnx, minus the batched string models the pytorch backend
# cannot load (one per repository with batching) and no dyna models.
LIBTORCH = {
    "qa_sequence_implicit_model_repository": 7,
    "qa_variable_sequence_implicit_model_repository": 3,
    "qa_sequence_initial_state_implicit_model_repository": 7,
    "qa_variable_sequence_initial_state_implicit_model_repository": 3,
    "qa_sequence_initial_state_file_implicit_model_repository": 7,
    "qa_variable_sequence_initial_state_file_implicit_model_repository": 3,
    "qa_multi_state_implicit_model_repository": 8,
    "qa_multi_state_initial_state_file_implicit_model_repository": 8,
    "qa_multi_state_order_implicit_model_repository": 8,
}


class ExpansionTest(unittest.TestCase):
    """The checked-in matrix yields upstream's repositories and names."""

    def test_onnx_models_per_repository(self):
        counts = {}
        for entry in expand():
            if entry.variant.backend.value == "onnx":
                counts[entry.repository] = counts.get(entry.repository, 0) + 1
        self.assertEqual(counts, UPSTREAM_ONNX)

    def test_libtorch_models_per_repository(self):
        counts = {}
        for entry in expand():
            if entry.variant.backend.value == "libtorch":
                counts[entry.repository] = counts.get(entry.repository, 0) + 1
        self.assertEqual(counts, LIBTORCH)

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
