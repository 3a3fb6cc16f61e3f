"""Direct tests of multi-state SavedModels from generators/backends/savedmodel/savedmodel_builder.py.

Like tests/savedmodel_builder_test.py, without the simulator: models with two
or three state pairs are built in this process and driven with hand-written
request batches (helpers: tests/savedmodel_support.py). Triton injects pair
k's initial state on every request (garbage, or the file's 100, 200, 300).
Expected values are the contract's literals, never computed here.

Run: `python -m unittest tests.savedmodel_multi_state_test` or as a script.
"""

import unittest

from tests.savedmodel_support import BuiltModels, ModelTestCase, Req, make_inputs, plain

MODELS = BuiltModels("savedmodel_multi_state_test.", [
    "int32_states2", "float32_states2_file", "int32_nobatch_states3_file", "float32_nobatch_states3",
])


# unittest builds the models once per module and removes them afterwards.
setUpModule = MODELS.build  # noqa: N816 - unittest's name
tearDownModule = MODELS.remove  # noqa: N816 - unittest's name


class MultiStateTest(ModelTestCase):
    """Several state pairs: pair k adds (k + 1) * INPUT, OUTPUT is the sum of (k + 1) * each."""

    models = MODELS

    def test_two_pairs_no_initial_state(self):
        """1, 2, 3, 4: pairs 1, 3, 6, 10 and 2, 6, 12, 20; OUTPUT 5, 15, 30, 50."""
        self.assertEqual(self.sequence_outputs("int32_states2", [1, 2, 3, 4]), {
            "OUTPUT": [[5], [15], [30], [50]],
            "OUTPUT_STATE": [[1], [3], [6], [10]],
            "OUTPUT_STATE_1": [[2], [6], [12], [20]],
        })

    def test_two_pairs_file(self):
        """Files 100, 200: pairs 101 .. 110 and 202 .. 220; OUTPUT 505 .. 550."""
        self.assertEqual(self.sequence_outputs("float32_states2_file", [1, 2, 3, 4]), {
            "OUTPUT": [[505.0], [515.0], [530.0], [550.0]],
            "OUTPUT_STATE": [[101.0], [103.0], [106.0], [110.0]],
            "OUTPUT_STATE_1": [[202.0], [206.0], [212.0], [220.0]],
        })

    def test_three_pairs_no_initial_state_nobatch(self):
        """Three pairs, float NaN garbage states: OUTPUT 14, 42, 84, 140."""
        self.assertEqual(self.sequence_outputs("float32_nobatch_states3", [1, 2, 3, 4]), {
            "OUTPUT": [[14.0], [42.0], [84.0], [140.0]],
            "OUTPUT_STATE": [[1.0], [3.0], [6.0], [10.0]],
            "OUTPUT_STATE_1": [[2.0], [6.0], [12.0], [20.0]],
            "OUTPUT_STATE_2": [[3.0], [9.0], [18.0], [30.0]],
        })

    def test_three_pairs_file_nobatch(self):
        """Files 100, 200, 300: OUTPUT 1414, 1442, 1484, 1540."""
        self.assertEqual(self.sequence_outputs("int32_nobatch_states3_file", [1, 2, 3, 4]), {
            "OUTPUT": [[1414], [1442], [1484], [1540]],
            "OUTPUT_STATE": [[101], [103], [106], [110]],
            "OUTPUT_STATE_1": [[202], [206], [212], [220]],
            "OUTPUT_STATE_2": [[303], [309], [318], [330]],
        })

    def test_start_mid_sequence_resets_every_pair(self):
        """1, 2, 42 (start), 9: OUTPUT 14, 42, 588, 714."""
        model = self.model("float32_nobatch_states3")
        values = [Req(4566, 1, start=True), Req(4566, 2), Req(4566, 42, start=True),
                  Req(4566, 9, end=True)]
        outputs = [self.step_outputs(model, [r]) for r in values]
        self.assertEqual([o["OUTPUT"][0] for o in outputs], [[14.0], [42.0], [588.0], [714.0]])
        self.assertEqual([o["OUTPUT_STATE_2"][0] for o in outputs],
                         [[3.0], [9.0], [126.0], [153.0]])

    def test_interleaved_sequences_with_null_rows(self):
        """Three sequences in moving slots, null rows (one carrying a live id) between."""
        model = self.model("int32_states2")
        steps = [
            [Req(987, 1, start=True), Req(988, 0, start=True), None, None],
            [Req(987, 2), Req(988, 9), None, Req(1003, 111, start=True)],
            [Req(988, 5), Req(987, 3), None, Req(1003, 113, end=True)],
            [Req(987, 4, end=True), Req(988, 13, end=True), None, None],
        ]
        outputs = []
        for slots in steps:
            outputs.append(self.step_outputs(model, slots))
            null = make_inputs(model[1], [None, None])  # READY=0 with a live id and flags
            null["CORRID"][:] = 988
            null["START"][:] = null["END"][:] = 1
            model[0](null)
        rows = {987: (0, 0, 1, 0), 988: (1, 1, 0, 1), 1003: (None, 3, 3, None)}

        def picked(corrid, name):
            return [out[name][row] for out, row in zip(outputs, rows[corrid], strict=True)
                    if row is not None]

        self.assertEqual(picked(987, "OUTPUT"), [[5], [15], [30], [50]])
        self.assertEqual(picked(987, "OUTPUT_STATE"), [[1], [3], [6], [10]])
        self.assertEqual(picked(987, "OUTPUT_STATE_1"), [[2], [6], [12], [20]])
        self.assertEqual(picked(988, "OUTPUT"), [[0], [45], [70], [135]])
        self.assertEqual(picked(988, "OUTPUT_STATE"), [[0], [9], [14], [27]])
        self.assertEqual(picked(988, "OUTPUT_STATE_1"), [[0], [18], [28], [54]])
        self.assertEqual(picked(1003, "OUTPUT"), [[555], [1120]])
        self.assertEqual(picked(1003, "OUTPUT_STATE_1"), [[222], [448]])

    def test_state_updating_backend(self):
        """Each state output fed back as its pair's input: still 1414 .. 1540."""
        runner, variant = self.model("int32_nobatch_states3_file")
        fed, totals = {}, []
        for index, value in enumerate([1, 2, 3, 4]):
            inputs = make_inputs(variant, [Req(5, value, start=index == 0, end=index == 3)])
            outputs = runner({**inputs, **fed})
            fed = {pair.input: outputs[pair.output] for pair in variant.state_pairs}
            totals.append(plain(outputs["OUTPUT"])[0])
        self.assertEqual(totals, [[1414], [1442], [1484], [1540]])


if __name__ == "__main__":
    unittest.main()
