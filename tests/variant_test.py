"""Unit tests of generators/variant.py: naming, validation and spec decoding."""

import json
import unittest
from unittest import mock

from generators import served_types
from generators.errors import SpecError, UnsupportedVariantError
from generators.variant import Backend, DType, InitialState, Strategy, Variant, backend_builds


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
        with self.assertRaisesRegex(SpecError, r"'dtype' has value 'complex64'; valid values are:"
                                    r" float32, int32, object, bool, boolean, int8, int16, int64,"
                                    r" uint8, uint16, uint32, uint64, float16, bfloat16, float64$"):
            Variant.from_spec(_spec(dtype="complex64"))

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
        with self.assertRaisesRegex(UnsupportedVariantError, "no initial state"):
            Variant.from_spec(_spec(strategy="oldest", initial_state="zero"))

    def test_every_backend_has_dyna_models(self):
        """The oldest strategy for every family, named as upstream names onnx's."""
        for backend in ("onnx", "savedmodel", "python", "plan", "libtorch"):
            for max_batch, infix in ((8, ""), (0, "_nobatch")):
                with self.subTest(backend=backend, max_batch=max_batch):
                    variant = Variant.from_spec(_spec(backend=backend, max_batch=max_batch,
                                                      strategy="oldest"))
                    self.assertEqual(variant.name, f"{backend}{infix}_dyna_sequence_int32")

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
        """At most 4 state pairs (one entry module per arity)."""
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


COVERAGE_DTYPES = ("boolean", "int8", "int16", "int64", "uint8", "uint16", "uint32", "uint64",
                   "float16", "bfloat16", "float64")
ADVICE = ("use state_dims [2] or [] with shape [1], dtype float32 or int32 and initial_state"
          " 'none' or 'zero'")
# No measured exclusion: the rules below are the variant's own, whatever
# generators/served_types.py holds today.
NO_EXCLUSIONS = mock.patch.dict(served_types.EXCLUSIONS, clear=True)


class StateCoverageTest(unittest.TestCase):
    """The state-coverage fields: state_dtype, state_dims, same_buffer, and the new dtypes."""

    def setUp(self) -> None:
        """Every test runs without measured exclusions (test_measured_exclusions adds one)."""
        NO_EXCLUSIONS.start()
        self.addCleanup(NO_EXCLUSIONS.stop)

    def assert_refused(self, error, message: str, **overrides) -> None:
        """The spec with `overrides` is refused with exactly `message` (after the error's prefix)."""
        prefix = {SpecError: "invalid variant spec: ",
                  UnsupportedVariantError: "unsupported variant: "}[error]
        with self.assertRaises(error) as caught:
            Variant.from_spec(_spec(**overrides))
        self.assertEqual(str(caught.exception), prefix + message)

    def test_names(self):
        """`_state_<type>` for a wider state, `_state_sum_count` / `_state_scalar` for other dims."""
        cases = [
            ({"state_dtype": "int64"}, "onnx_sequence_int32_state_int64"),
            ({"dtype": "float16", "state_dtype": "float32", "max_batch": 0},
             "onnx_nobatch_sequence_float16_state_float32"),
            ({"state_dims": [2], "initial_state": "zero"}, "onnx_sequence_int32_state_sum_count"),
            ({"state_dims": [], "backend": "libtorch", "max_batch": 0},
             "libtorch_nobatch_sequence_int32_state_scalar"),
            ({"same_buffer": True, "dtype": "float32"}, "onnx_sequence_float32"),
            ({"dtype": "boolean", "backend": "python"}, "python_sequence_boolean"),
            ({"dtype": "bfloat16", "shape": [-1], "backend": "savedmodel"},
             "savedmodel_sequence_bfloat16"),
        ]
        for overrides, name in cases:
            with self.subTest(name=name):
                self.assertEqual(Variant.from_spec(_spec(**overrides)).name, name)

    def test_state_type_and_layout(self):
        """state_type is state_dtype or dtype; state_layout the state dims or INPUT's shape."""
        wider = Variant.from_spec(_spec(state_dtype="int64"))
        self.assertEqual((wider.state_type, wider.state_layout, wider.state_shape),
                         (DType.INT64, (1,), (1,)))
        sum_count = Variant.from_spec(_spec(state_dims=[2], initial_state="zero"))
        self.assertEqual((sum_count.state_type, sum_count.state_layout, sum_count.state_shape,
                          sum_count.initial_dims), (DType.INT32, (2,), (2,), (2,)))
        scalar = Variant.from_spec(_spec(state_dims=[]))
        self.assertEqual((scalar.state_layout, scalar.state_shape, scalar.initial_dims),
                         ((), (), ()))
        plain = Variant.from_spec(_spec(shape=[-1], dtype="uint16"))
        self.assertEqual((plain.state_type, plain.state_layout, plain.state_shape),
                         (DType.UINT16, (-1,), (1,)))

    def test_coverage_dtypes_for_every_family_but_plan(self):
        """The eleven new dtypes build for onnx, savedmodel, python and libtorch; plans refuse them."""
        for dtype in COVERAGE_DTYPES:
            for backend in ("onnx", "savedmodel", "python", "libtorch"):
                with self.subTest(dtype=dtype, backend=backend):
                    self.assertEqual(Variant.from_spec(_spec(backend=backend, dtype=dtype,
                                                             max_batch=0)).dtype.value, dtype)
                    self.assertTrue(backend_builds(Backend(backend), DType(dtype), 8))
            with self.subTest(dtype=dtype, backend="plan"):
                self.assert_refused(UnsupportedVariantError, f"backend 'plan' does not support"
                                    f" dtype '{dtype}'; choose one of: float32, int32",
                                    backend="plan", dtype=dtype)

    def test_state_dtype_rules(self):
        """Only the wider pairs int32 -> int64 and float16 -> float32."""
        for dtype, state_dtype in (("float32", "int64"), ("int32", "float32"), ("int32", "int32")):
            with self.subTest(dtype=dtype, state_dtype=state_dtype):
                self.assert_refused(UnsupportedVariantError,
                                    f"state_dtype '{state_dtype}' with dtype '{dtype}' is not"
                                    " defined; the wider states are int32 -> int64, float16 ->"
                                    " float32", dtype=dtype, state_dtype=state_dtype)

    def test_state_dims_rules(self):
        """[2] or [] with shape [1], dtype float32 or int32, no file initial state."""
        cases = [
            ({"state_dims": [3]}, "[3] with shape [1], dtype 'int32' and initial_state 'none'"),
            ({"state_dims": [2], "shape": [-1]},
             "[2] with shape [-1], dtype 'int32' and initial_state 'none'"),
            ({"state_dims": [], "dtype": "bool"},
             "[] with shape [1], dtype 'bool' and initial_state 'none'"),
            ({"state_dims": [2], "initial_state": "file"},
             "[2] with shape [1], dtype 'int32' and initial_state 'file'"),
        ]
        for overrides, what in cases:
            with self.subTest(what=what):
                self.assert_refused(UnsupportedVariantError,
                                    f"state_dims {what} is not defined; {ADVICE}", **overrides)

    def test_same_buffer_rules(self):
        """float32 and int32 only."""
        self.assert_refused(UnsupportedVariantError, "same_buffer is defined for float32 and"
                            " int32 only, got dtype 'object'", dtype="object", same_buffer=True)
        self.assertTrue(Variant.from_spec(_spec(dtype="float32", same_buffer=True)).same_buffer)

    def test_one_option_at_a_time(self):
        """Each coverage model varies one thing from a single-state direct model."""
        pairs = [["INPUT_STATE", "OUTPUT_STATE"], ["INPUT_STATE_1", "OUTPUT_STATE_1"]]
        cases = [
            ({"state_dtype": "int64", "same_buffer": True}, "['state_dtype', 'same_buffer']"),
            ({"state_dims": [2], "state_pairs": pairs}, "['state_dims', 'state_pairs']"),
            ({"same_buffer": True, "strategy": "oldest"}, "['same_buffer', \"strategy 'oldest'\"]"),
        ]
        for overrides, options in cases:
            with self.subTest(options=options):
                self.assert_refused(UnsupportedVariantError,
                                    f"options {options} are combined; each state-coverage model"
                                    " varies one thing from a single-state direct model, so give"
                                    " at most one of them", **overrides)

    def test_coverage_dtypes_are_single_state_direct(self):
        """A new dtype takes no other option (a wider float16 state excepted)."""
        for overrides, dropped in (({"strategy": "oldest"}, "[\"strategy 'oldest'\"]"),
                                   ({"same_buffer": True}, "['same_buffer']")):
            with self.subTest(dropped=dropped):
                self.assert_refused(UnsupportedVariantError, "dtype 'int64' is a state-coverage"
                                    " dtype, defined for the default single-state direct model"
                                    f" only; drop {dropped}", dtype="int64", **overrides)
        Variant.from_spec(_spec(dtype="float16", state_dtype="float32"))

    def test_measured_exclusions(self):
        """A (family, dtype) in served_types.EXCLUSIONS is neither built nor accepted, state type too."""
        with mock.patch.dict(served_types.EXCLUSIONS, {("onnx", "int64"): "measured refusal"}):
            self.assertFalse(backend_builds(Backend.ONNX, DType.INT64, 8))
            self.assertTrue(backend_builds(Backend.PYTHON, DType.INT64, 8))
            for overrides in ({"dtype": "int64"}, {"state_dtype": "int64"}):
                with self.subTest(**overrides):
                    self.assert_refused(UnsupportedVariantError, "backend 'onnx' cannot serve"
                                        " dtype 'int64': measured refusal"
                                        " (generators/served_types.py); choose another dtype or"
                                        " backend", **overrides)
        self.assertTrue(backend_builds(Backend.ONNX, DType.INT64, 8))

    def test_spec_round_trip(self):
        """Each field survives to_json / from_json; the defaults stay out of the spec."""
        specs = [_spec(state_dtype="int64"), _spec(dtype="float16", state_dtype="float32"),
                 _spec(state_dims=[2], initial_state="zero"), _spec(state_dims=[]),
                 _spec(same_buffer=True), _spec(dtype="bfloat16", shape=[-1], max_batch=0),
                 _spec(dtype="boolean", initial_state="file"),
                 _spec(backend="libtorch", strategy="oldest")]
        for spec in specs:
            with self.subTest(spec=spec):
                variant = Variant.from_spec(spec)
                self.assertEqual(Variant.from_json(variant.to_json()), variant)
        plain = Variant.from_spec(_spec()).to_spec()
        self.assertFalse({"state_dtype", "state_dims", "same_buffer"} & set(plain))

    def test_canonical_json(self):
        """The spec text of each new field, written out."""
        cases = [
            (_spec(state_dtype="int64"),
             '{"backend":"onnx","dtype":"int32","initial_state":"none","max_batch":8,'
             '"shape":[1],"state_dtype":"int64","strategy":"direct"}'),
            (_spec(state_dims=[]),
             '{"backend":"onnx","dtype":"int32","initial_state":"none","max_batch":8,'
             '"shape":[1],"state_dims":[],"strategy":"direct"}'),
            (_spec(same_buffer=True),
             '{"backend":"onnx","dtype":"int32","initial_state":"none","max_batch":8,'
             '"same_buffer":true,"shape":[1],"strategy":"direct"}'),
        ]
        for spec, text in cases:
            with self.subTest(text=text):
                self.assertEqual(Variant.from_json(json.dumps(spec)).to_json(), text)

    def test_mistyped_fields(self):
        """state_dims a list of ints, same_buffer a bool, state_dtype a dtype name."""
        dtypes = ", ".join(d.value for d in DType)
        cases = [
            ({"state_dims": "2"}, "field 'state_dims' must be a list of ints, got '2'"),
            ({"state_dims": [True]}, "field 'state_dims' must be a list of ints, got [True]"),
            ({"same_buffer": "yes"}, "field 'same_buffer' must be true or false, got 'yes'"),
            ({"state_dtype": "int128"},
             f"field 'state_dtype' has value 'int128'; valid values are: {dtypes}"),
        ]
        for overrides, message in cases:
            with self.subTest(message=message):
                self.assert_refused(SpecError, message, **overrides)


if __name__ == "__main__":
    unittest.main()
