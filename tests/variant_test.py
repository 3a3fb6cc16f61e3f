"""Unit tests of generators/variant.py: naming, validation and spec decoding."""

import unittest

from generators.errors import SpecError, UnsupportedVariantError
from generators.variant import Backend, DType, InitialState, Strategy, Variant


def _spec(**overrides):
    spec = {"backend": "onnx", "dtype": "int32", "shape": [1], "max_batch": 8}
    spec.update(overrides)
    return spec


class NamingTest(unittest.TestCase):
    """Model names must be exactly what Triton's QA clients build."""

    def test_names(self):
        cases = {
            ("onnx", "int32", 8, "direct"): "onnx_sequence_int32",
            ("onnx", "object", 0, "direct"): "onnx_nobatch_sequence_object",
            ("onnx", "int32", 8, "oldest"): "onnx_dyna_sequence_int32",
            ("onnx", "int32", 0, "oldest"): "onnx_nobatch_dyna_sequence_int32",
            ("plan", "float32", 0, "direct"): "plan_nobatch_sequence_float32",
            ("python", "bool", 8, "direct"): "python_sequence_bool",
            ("savedmodel", "float32", 0, "direct"): "savedmodel_nobatch_sequence_float32",
        }
        for (backend, dtype, max_batch, strategy), name in cases.items():
            variant = Variant.from_spec(
                _spec(backend=backend, dtype=dtype, max_batch=max_batch, strategy=strategy)
            )
            self.assertEqual(variant.name, name)

    def test_variable_shape_and_initial_state_add_no_suffix(self):
        variant = Variant.from_spec(_spec(shape=[-1], initial_state="file"))
        self.assertEqual(variant.name, "onnx_sequence_int32")
        self.assertEqual(variant.state_shape, (1,))


class CrossedStateOrderTest(unittest.TestCase):
    """Whether output state names sort in another order than the input names (issue 8586)."""

    def crossed(self, pairs):
        return Variant.from_spec(_spec(state_pairs=pairs)).crossed_state_order

    def test_default_and_numbered_names_sort_alike(self):
        self.assertFalse(Variant.from_spec(_spec()).crossed_state_order)
        self.assertFalse(self.crossed([["INPUT_STATE", "OUTPUT_STATE"],
                                       ["INPUT_STATE_1", "OUTPUT_STATE_1"]]))

    def test_swapped_and_rotated_names_are_crossed(self):
        self.assertTrue(self.crossed([["INPUT_STATE_A", "OUTPUT_STATE_B"],
                                      ["INPUT_STATE_B", "OUTPUT_STATE_A"]]))
        self.assertTrue(self.crossed([["STATE_IN_A", "STATE_OUT_Z"], ["STATE_IN_B", "STATE_OUT_Y"]]))
        self.assertTrue(self.crossed([["A", "Q"], ["B", "R"], ["C", "P"]]))

    def test_different_names_in_the_same_order_are_not(self):
        self.assertFalse(self.crossed([["A", "X"], ["B", "Y"], ["C", "Z"]]))


class SpecDecodingTest(unittest.TestCase):
    """Malformed specs fail with errors naming the field and the choices."""

    def test_round_trip(self):
        variant = Variant(backend=Backend.PYTHON, dtype=DType.OBJECT, shape=(-1,), max_batch=8,
                          initial_state=InitialState.ZERO, strategy=Strategy.DIRECT)
        self.assertEqual(Variant.from_json(variant.to_json()), variant)

    def test_unknown_backend(self):
        with self.assertRaisesRegex(SpecError, r"'backend' has value 'tflite'.*onnx, savedmodel"):
            Variant.from_spec(_spec(backend="tflite"))

    def test_unknown_dtype(self):
        with self.assertRaisesRegex(SpecError, r"'dtype' has value 'float16'.*float32, int32"):
            Variant.from_spec(_spec(dtype="float16"))

    def test_unknown_and_missing_keys(self):
        with self.assertRaisesRegex(SpecError, r"unknown keys \['colour'\]"):
            Variant.from_spec(_spec(colour="red"))
        spec = _spec()
        del spec["shape"]
        with self.assertRaisesRegex(SpecError, r"missing keys \['shape'\]"):
            Variant.from_spec(spec)

    def test_mistyped_fields(self):
        with self.assertRaisesRegex(SpecError, "'shape' must be a list of ints"):
            Variant.from_spec(_spec(shape="1"))
        with self.assertRaisesRegex(SpecError, "'max_batch' must be an int"):
            Variant.from_spec(_spec(max_batch=True))

    def test_not_json(self):
        with self.assertRaisesRegex(SpecError, "not valid JSON"):
            Variant.from_json("{backend: onnx")


class ContractExclusionsTest(unittest.TestCase):
    """Combinations the contract excludes are rejected, naming the rule."""

    def test_plan_strings(self):
        with self.assertRaisesRegex(UnsupportedVariantError, "'plan' does not support dtype 'object'"):
            Variant.from_spec(_spec(backend="plan", dtype="object"))

    def test_dyna_rules(self):
        with self.assertRaisesRegex(UnsupportedVariantError, "dyna models are int32 only"):
            Variant.from_spec(_spec(dtype="float32", strategy="oldest"))
        with self.assertRaisesRegex(UnsupportedVariantError, "no dyna"):
            Variant.from_spec(_spec(backend="python", strategy="oldest"))
        with self.assertRaisesRegex(UnsupportedVariantError, "no initial state"):
            Variant.from_spec(_spec(strategy="oldest", initial_state="zero"))

    def test_libtorch_batched_strings(self):
        """The pytorch backend takes strings as a 1-D List[str]: batched ones never load."""
        with self.assertRaisesRegex(UnsupportedVariantError,
                                    r"'libtorch' cannot serve batched string models.*max_batch 0"):
            Variant.from_spec(_spec(backend="libtorch", dtype="object", max_batch=8))
        self.assertEqual(Variant.from_spec(_spec(backend="libtorch", dtype="object",
                                                 max_batch=0)).name,
                         "libtorch_nobatch_sequence_object")

    def test_libtorch_state_names(self):
        """The libtorch family appends `__<index>` itself; a name holding `__` is refused, naming it."""
        pairs = [["INPUT_STATE", "OUTPUT_STATE"], ["INPUT_STATE__4", "OUTPUT_STATE_1"]]
        with self.assertRaisesRegex(UnsupportedVariantError,
                                    r"'INPUT_STATE__4' holds '__'.*INPUT_STATE_1__4"):
            Variant.from_spec(_spec(backend="libtorch", state_pairs=pairs))
        # Other families keep any valid tensor name.
        Variant.from_spec(_spec(backend="onnx", state_pairs=pairs))

    def test_libtorch_rules(self):
        """No dyna libtorch models; at most 4 state pairs (one entry module per arity)."""
        with self.assertRaisesRegex(UnsupportedVariantError, "'libtorch' has no dyna"):
            Variant.from_spec(_spec(backend="libtorch", strategy="oldest"))
        pairs = [[f"IN_{k}", f"OUT_{k}"] for k in range(5)]
        with self.assertRaisesRegex(UnsupportedVariantError, "at most 4 state pairs, got 5"):
            Variant.from_spec(_spec(backend="libtorch", state_pairs=pairs))

    def test_bad_shapes(self):
        for shape in ([], [0], [-2]):
            with self.assertRaisesRegex(UnsupportedVariantError, "shape"):
                Variant.from_spec(_spec(shape=shape))



class InitialStateDimsTest(unittest.TestCase):
    """Concrete initial-state dims under a variable state (the 6538 reproducers)."""

    def dims_spec(self, **overrides):
        """A variable int32 file-state spec with initial dims [3]."""
        return _spec(**{"shape": [-1], "initial_state": "file", "initial_state_dims": [3],
                        **overrides})

    def test_round_trip_and_dims(self):
        """The spec keeps the field; the initial dims are its, the start shape -1 -> 1."""
        variant = Variant.from_spec(self.dims_spec())
        self.assertEqual(Variant.from_json(variant.to_json()), variant)
        self.assertEqual((variant.initial_dims, variant.state_shape), ((3,), (1,)))
        self.assertNotIn("initial_state_dims", Variant.from_spec(_spec()).to_spec())

    def test_rules(self):
        """File state only, numeric single-state direct models, dims fitting a variable shape."""
        cases = {
            "need initial_state 'file'": self.dims_spec(initial_state="zero"),
            "single-state direct float32 and int32": self.dims_spec(dtype="object"),
            "do not fit shape \\[1\\]": self.dims_spec(shape=[1], initial_state_dims=[1]),
            "do not fit shape \\[-1\\]": self.dims_spec(initial_state_dims=[3, 1]),
        }
        for message, spec in cases.items():
            with self.subTest(message=message):
                with self.assertRaisesRegex(UnsupportedVariantError, message):
                    Variant.from_spec(spec)
        with self.assertRaisesRegex(SpecError, "'initial_state_dims' must be a list of ints"):
            Variant.from_spec(self.dims_spec(initial_state_dims="3"))


if __name__ == "__main__":
    unittest.main()
