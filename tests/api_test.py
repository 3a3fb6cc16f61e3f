"""The Python API (generators/api.py) writes the Bazel build's bytes.

Each test calls the upstream-named functions into a temporary directory and
compares every file's sha256 with the manifest entry of the same variant in
the built tree: `//models:implicit_repo` under Bazel (IMPLICIT_REPO), or the
standalone CLI's output otherwise (onnx and python through
`tests.repo_location.implicit_repo`; for savedmodel only the one repository
the test uses, to keep a run by hand short). Plans are GPU-only and not
byte-reproducible: without TensorRT and a GPU the test pins the clear error
and that nothing was written. Also covers dtype normalisation, replacement
of existing files, forked builders and the error messages.
"""

import functools
import json
import os
import pathlib
import shutil
import tempfile
import types
import unittest
from unittest import mock

import numpy as np

from generators import api, gen_qa_implicit_models
from generators.backends.plan import plan_builder
from generators.errors import (
    BackendUnavailableError,
    GeneratorError,
    OptionError,
    OutputDirError,
    SpecError,
    UnsupportedVariantError,
)
from generators.manifest import MANIFEST_NAME, file_digests
from generators.model_config import parse_config
from generators.variant import DType
from tests.repo_location import ENV_VAR, implicit_repo

FIXED = "qa_sequence_implicit_model_repository"
VARIABLE = "qa_variable_sequence_implicit_model_repository"
FIXED_FILE = "qa_sequence_initial_state_file_implicit_model_repository"
VARIABLE_ZERO = "qa_variable_sequence_initial_state_implicit_model_repository"
DYNA = "qa_dyna_sequence_implicit_model_repository"
MULTI = "qa_multi_state_implicit_model_repository"
MULTI_FILE = "qa_multi_state_initial_state_file_implicit_model_repository"
MULTI_ORDER = "qa_multi_state_order_implicit_model_repository"
# The savedmodel repository the test compares with, and the CLI flags that write it.
SAVEDMODEL_REPO = VARIABLE_ZERO
SAVEDMODEL_FLAGS = ("--savedmodel", "--variable", "--initial-state", "zero")
TWO_STATES = [("INPUT_STATE", "OUTPUT_STATE"), ("INPUT_STATE_1", "OUTPUT_STATE_1")]
THREE_STATES = TWO_STATES + [("INPUT_STATE_2", "OUTPUT_STATE_2")]
# Output names rotated against the inputs, as the order repository has them.
CROSSED_STATES = [("INPUT_STATE_A", "OUTPUT_STATE_B"), ("INPUT_STATE_B", "OUTPUT_STATE_C"),
                  ("INPUT_STATE_C", "OUTPUT_STATE_A")]


@functools.lru_cache(maxsize=None)
def _manifest_files() -> dict:
    """{(repository, model name): {path: sha256}} of the built onnx, python, libtorch models."""
    backends = ("onnx", "python", "libtorch")
    manifest = json.loads((implicit_repo(backends) / MANIFEST_NAME).read_text())
    return {(m["repository"], m["name"]): m["files"] for m in manifest["models"]}


@functools.lru_cache(maxsize=None)
def _cli_savedmodel_files() -> dict:
    """{model name: {path: sha256}} of the CLI's savedmodels of SAVEDMODEL_REPO."""
    root = pathlib.Path(tempfile.mkdtemp(prefix="api_test_savedmodel."))
    try:
        code = gen_qa_implicit_models.main(["--models_dir", str(root), *SAVEDMODEL_FLAGS])
        if code != 0:
            raise RuntimeError(f"the CLI failed generating {SAVEDMODEL_FLAGS}")
        return {model.name: file_digests(model) for model in root.iterdir()}
    finally:
        shutil.rmtree(root, ignore_errors=True)


def built_files(repository: str, name: str) -> dict:
    """File digests of a built model, keyed by path inside its model directory."""
    if os.environ.get(ENV_VAR) or not name.startswith("savedmodel"):
        return _manifest_files()[(repository, name)]
    assert repository == SAVEDMODEL_REPO, f"outside Bazel only {SAVEDMODEL_REPO} is built"
    return _cli_savedmodel_files()[name]


class ApiTestCase(unittest.TestCase):
    """A fresh models_dir per test and a byte comparison with the build."""

    def setUp(self):
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="api_test."))
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)

    def assertBuiltModel(self, repository: str, name: str):  # noqa: N802 - unittest style
        self.assertEqual(file_digests(self.dir / name), built_files(repository, name),
                         f"{name} differs from {repository}/{name} of the build")


class OnnxTest(ApiTestCase):
    """create_onnx_modelfile + create_modelconfig, across the matrix's axes."""

    def test_fixed_batched_int32(self):
        model = api.create_onnx_modelfile(self.dir, 1, 8, np.int32, [1])
        config = api.create_modelconfig(self.dir, "onnx_sequence_int32", 8, "int32", [1],
                                        [("INPUT_STATE", "OUTPUT_STATE")])
        self.assertEqual(model, self.dir / "onnx_sequence_int32" / "1" / "model.onnx")
        self.assertEqual(config, self.dir / "onnx_sequence_int32" / "config.pbtxt")
        self.assertBuiltModel(FIXED, "onnx_sequence_int32")

    def test_nobatch_string(self):
        api.create_onnx_modelfile(str(self.dir), 1, 0, np.object_, [1])
        api.create_modelconfig(str(self.dir), "onnx_nobatch_sequence_object", 0, np.object_, [1], None)
        self.assertBuiltModel(FIXED, "onnx_nobatch_sequence_object")

    def test_variable_zero_initial_state(self):
        api.create_onnx_modelfile(self.dir, 1, 8, np.dtype("float32"), [-1], initial_state="zero")
        api.create_modelconfig(self.dir, "onnx_sequence_float32", 8, np.float32, [-1], None,
                               initial_state="zero")
        self.assertBuiltModel(VARIABLE_ZERO, "onnx_sequence_float32")

    def test_file_initial_state_writes_data_file(self):
        api.create_onnx_modelfile(self.dir, 1, 0, bool, [1], initial_state="file")
        api.create_modelconfig(self.dir, "onnx_nobatch_sequence_bool", 0, np.bool_, [1], None,
                               initial_state="file")
        self.assertIn("initial_state/input_state_data", file_digests(self.dir / "onnx_nobatch_sequence_bool"))
        self.assertBuiltModel(FIXED_FILE, "onnx_nobatch_sequence_bool")

    def test_dyna(self):
        name = api.model_name("onnx", 0, np.int32, dyna=True)
        self.assertEqual(name, "onnx_nobatch_dyna_sequence_int32")
        api.create_onnx_modelfile(self.dir, 1, 0, np.int32, [1], dyna=True)
        api.create_modelconfig(self.dir, name, 0, np.int32, [1], None, dyna=True)
        self.assertBuiltModel(DYNA, name)

    def test_two_state_pairs(self):
        api.create_onnx_modelfile(self.dir, 1, 8, np.float32, [1], state_pairs=TWO_STATES)
        api.create_modelconfig(self.dir, "onnx_sequence_float32_states2", 8, np.float32, [1],
                               TWO_STATES)
        self.assertBuiltModel(MULTI, "onnx_sequence_float32_states2")

    def test_crossed_state_names_kept_in_order(self):
        """Pairs whose output names sort differently pass through as given, in order."""
        name = "onnx_nobatch_sequence_int32_states3"
        api.create_onnx_modelfile(self.dir, 1, 0, np.int32, [1], state_pairs=CROSSED_STATES)
        api.create_modelconfig(self.dir, name, 0, np.int32, [1], CROSSED_STATES)
        config = parse_config((self.dir / name / "config.pbtxt").read_text())
        self.assertEqual([(s.input_name, s.output_name) for s in config.sequence_batching.state],
                         CROSSED_STATES)
        self.assertBuiltModel(MULTI_ORDER, name)

    def test_model_version_names_the_version_dir(self):
        path = api.create_onnx_modelfile(self.dir, 3, 8, "int32", [1])
        self.assertEqual(path.relative_to(self.dir).as_posix(), "onnx_sequence_int32/3/model.onnx")
        built = built_files(FIXED, "onnx_sequence_int32")
        self.assertEqual(file_digests(self.dir / "onnx_sequence_int32"),
                         {"3/model.onnx": built["1/model.onnx"]})

    def test_rewrite_replaces_the_model_file(self):
        api.create_onnx_modelfile(self.dir, 1, 8, np.float32, [-1])
        api.create_onnx_modelfile(self.dir, 1, 8, np.float32, [-1], initial_state="zero")
        api.create_modelconfig(self.dir, "onnx_sequence_float32", 8, np.float32, [-1], None,
                               initial_state="zero")
        self.assertBuiltModel(VARIABLE_ZERO, "onnx_sequence_float32")
        self.assertEqual([p.name for p in self.dir.iterdir()], ["onnx_sequence_float32"],
                         "no staging directory is left behind")


class OtherFamiliesTest(ApiTestCase):
    """The python, libtorch, savedmodel and plan model files."""

    def test_python_three_states_file_initial_state(self):
        name = "python_nobatch_sequence_int32_states3"
        path = api.create_python_modelfile(self.dir, 1, 0, np.int32, [1], initial_state="file",
                                           state_pairs=THREE_STATES)
        api.create_modelconfig(self.dir, name, 0, np.int32, [1], THREE_STATES, initial_state="file")
        self.assertEqual(path.name, "model.py")
        self.assertEqual(len(list((self.dir / name / "initial_state").iterdir())), 3)
        self.assertBuiltModel(MULTI_FILE, name)

    def test_libtorch_upstream_positional_arguments(self):
        """create_libtorch_modelfile(models_dir, version, max_batch, dtype, shape), as upstream."""
        path = api.create_libtorch_modelfile(self.dir, 1, 0, np.object_, [1])
        api.create_modelconfig(self.dir, "libtorch_nobatch_sequence_object", 0, np.object_, [1])
        self.assertEqual(path, self.dir / "libtorch_nobatch_sequence_object" / "1" / "model.pt")
        self.assertBuiltModel(FIXED, "libtorch_nobatch_sequence_object")

    def test_libtorch_three_states_file_initial_state(self):
        name = "libtorch_sequence_float32_states3"
        api.create_libtorch_modelfile(self.dir, 1, 8, np.float32, [1], initial_state="file",
                                      state_pairs=THREE_STATES)
        api.create_modelconfig(self.dir, name, 8, np.float32, [1], THREE_STATES,
                               initial_state="file")
        self.assertBuiltModel(MULTI_FILE, name)

    def test_libtorch_batched_strings_refused(self):
        with self.assertRaisesRegex(UnsupportedVariantError,
                                    "'libtorch' cannot serve batched string models"):
            api.create_libtorch_modelfile(self.dir, 1, 8, np.object_, [1])
        with self.assertRaisesRegex(UnsupportedVariantError, "batched string"):
            api.create_models(self.dir, np.object_, [1], backends=("onnx", "libtorch"))
        self.assertEqual(list(self.dir.iterdir()), [])

    def test_savedmodel_in_forked_child(self):
        path = api.create_tf_modelfile(self.dir, 1, 8, "int32", [-1], initial_state="zero")
        api.create_modelconfig(self.dir, "savedmodel_sequence_int32", 8, np.int32, [-1], None,
                               initial_state="zero")
        self.assertTrue((path / "saved_model.pb").is_file())
        self.assertBuiltModel(SAVEDMODEL_REPO, "savedmodel_sequence_int32")

    def test_plan_without_tensorrt_writes_nothing(self):
        try:
            plan_builder.import_tensorrt()
            plan_builder.require_cuda_device()
        except BackendUnavailableError:
            pass
        else:
            path = api.create_plan_modelfile(self.dir, 1, 8, np.float32, [1])
            self.assertGreater(path.stat().st_size, 0)
            return
        models_dir = self.dir / "new"
        with self.assertRaisesRegex(BackendUnavailableError, "TensorRT|GPU"):
            api.create_plan_modelfile(models_dir, 1, 8, np.float32, [1])
        self.assertFalse(models_dir.exists(), "a models_dir the call created is removed again")
        with self.assertRaisesRegex(BackendUnavailableError, "TensorRT|GPU"):
            api.create_plan_modelfile(self.dir, 1, 0, "int32", [-1])
        self.assertEqual(list(self.dir.iterdir()), [])


class CreateModelsTest(ApiTestCase):
    """create_models writes model files and configs of the selected backends."""

    def test_fixed_with_nobatch(self):
        written = api.create_models(self.dir, np.int32, [1], backends=("onnx", "python"))
        names = ["onnx_sequence_int32", "onnx_nobatch_sequence_int32",
                 "python_sequence_int32", "python_nobatch_sequence_int32"]
        self.assertEqual(written, [self.dir / n for n in names])
        self.assertEqual(sorted(p.name for p in self.dir.iterdir()), sorted(names))
        for name in names:
            self.assertBuiltModel(FIXED, name)

    def test_variable_without_nobatch_defaults_to_onnx(self):
        api.create_models(self.dir, "float32", [-1], False)
        self.assertEqual([p.name for p in self.dir.iterdir()], ["onnx_sequence_float32"])
        self.assertBuiltModel(VARIABLE, "onnx_sequence_float32")

    def test_impossible_combination_writes_nothing(self):
        with self.assertRaisesRegex(UnsupportedVariantError, "'plan' does not support dtype 'bool'"):
            api.create_models(self.dir, bool, [1], backends=("onnx", "tensorrt"))
        self.assertEqual(list(self.dir.iterdir()), [])


class DTypeTest(unittest.TestCase):
    """Numpy dtypes, numpy types and model-name spellings all normalise."""

    def test_accepted_spellings(self):
        cases = {
            DType.FLOAT32: [np.float32, np.dtype("float32"), "float32"],
            DType.INT32: [np.int32, np.dtype("int32"), "int32"],
            DType.OBJECT: [np.object_, np.dtype(object), object, "object"],
            DType.BOOL: [bool, np.bool_, np.dtype(bool), "bool"],
        }
        for expected, spellings in cases.items():
            for spelling in spellings:
                with self.subTest(spelling=spelling):
                    self.assertIs(api.normalize_dtype(spelling), expected)

    def test_rejected_dtypes_name_the_choices(self):
        for bad, pattern in [(np.complex64, "'complex64' is not supported"),
                             ("TYPE_INT32", "'TYPE_INT32' is not a numpy dtype"),
                             (str, "strings are 'object'"), (None, "not a numpy dtype")]:
            with self.subTest(dtype=bad), self.assertRaisesRegex(SpecError, pattern + ".*float32, int32"):
                api.normalize_dtype(bad)


class ErrorTest(unittest.TestCase):
    """Bad input raises the generator's errors, and nothing is written."""

    def setUp(self):
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="api_test."))
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)

    def assertRaisesNothingWritten(self, error, pattern, call, *args, **kwargs):  # noqa: N802
        with self.assertRaisesRegex(error, pattern):
            call(*args, **kwargs)
        self.assertEqual(list(self.dir.iterdir()), [])

    def test_bad_arguments(self):
        cases = [
            (UnsupportedVariantError, "does not support dtype 'object'",
             api.create_plan_modelfile, (self.dir, 1, 8, np.object_, [1]), {}),
            (UnsupportedVariantError, "dyna models are int32 only",
             api.create_onnx_modelfile, (self.dir, 1, 8, np.float32, [1]), {"dyna": True}),
            (UnsupportedVariantError, r"shape \[0\] is invalid",
             api.create_onnx_modelfile, (self.dir, 1, 8, "int32", [0]), {}),
            (SpecError, "'shape' must be a list of ints",
             api.create_onnx_modelfile, (self.dir, 1, 8, "int32", "1"), {}),
            (SpecError, "model_version is 0; it must be >= 1",
             api.create_python_modelfile, (self.dir, 0, 8, "int32", [1]), {}),
            (SpecError, "'initial_state' has value 'ones'; valid values are: none, zero, file",
             api.create_onnx_modelfile, (self.dir, 1, 8, "int32", [1]), {"initial_state": "ones"}),
            (SpecError, "'state_pairs' must be a list of",
             api.create_onnx_modelfile, (self.dir, 1, 8, "int32", [1]), {"state_pairs": ["INPUT_STATE"]}),
            (SpecError, "backend 'tf' is unknown; use one of: onnx, savedmodel",
             api.create_models, (self.dir, "int32", [1]), {"backends": ("onnx", "tf")}),
            (SpecError, "names the python family but backend is 'onnx'",
             api.create_modelconfig, (self.dir, "python_sequence_int32", 8, "int32", [1]),
             {"backend": "onnx"}),
            (SpecError, "is not a directory name",
             api.create_modelconfig, (self.dir, "../escape", 8, "int32", [1]), {}),
            (OptionError, r"onnx_opset 99: the pinned onnx [\d.]+ knows default-domain opsets",
             api.create_onnx_modelfile, (self.dir, 1, 8, "int32", [1]), {"onnx_opset": 99}),
            (OptionError, r"onnx_ir_version 99: the pinned onnx [\d.]+ knows IR versions",
             api.create_onnx_modelfile, (self.dir, 1, 8, "int32", [1]), {"onnx_ir_version": 99}),
            (OptionError, "onnx_opset 21 needs IR version 10 or newer.*onnx_ir_version is 8;"
             " raise onnx_ir_version to 10",
             api.create_onnx_modelfile, (self.dir, 1, 8, "int32", [1]), {"onnx_opset": 21}),
            (OptionError, r"onnx_opset 8 is older than the operators our ONNX graphs use: Where"
             r" \(opset 9 on\)",
             api.create_onnx_modelfile, (self.dir, 1, 8, "int32", [1]), {"onnx_opset": 8}),
        ]
        for error, pattern, call, args, kwargs in cases:
            with self.subTest(pattern=pattern):
                self.assertRaisesNothingWritten(error, pattern, call, *args, **kwargs)

    def test_models_dir_is_a_file(self):
        not_a_dir = self.dir / "file"
        not_a_dir.write_text("")
        with self.assertRaisesRegex(OutputDirError, "is not a directory"):
            api.create_onnx_modelfile(not_a_dir, 1, 8, "int32", [1])
        with self.assertRaisesRegex(OutputDirError, "is not a directory"):
            api.create_modelconfig(not_a_dir, "onnx_sequence_int32", 8, "int32", [1])


class ForkedBuilderTest(ApiTestCase):
    """Builders with FORK_PER_MODEL run in a child; its files and errors come back."""

    def fake_builder(self, write_model):
        builder = types.SimpleNamespace(FORK_PER_MODEL=True, write_model=write_model)
        patcher = mock.patch.object(api, "builder_for", return_value=builder)
        patcher.start()
        self.addCleanup(patcher.stop)

    def test_child_writes_the_model(self):
        parent = os.getpid()

        def write_model(variant, options, version_dir):
            (version_dir / "model.py").write_text(str(os.getpid() != parent))

        self.fake_builder(write_model)
        path = api.create_python_modelfile(self.dir, 1, 8, "int32", [1])
        self.assertEqual(path.read_text(), "True", "built in a forked child")

    def test_child_error_keeps_its_class_and_message(self):
        def write_model(variant, options, version_dir):
            (version_dir / "model.py").write_text("partial")
            raise BackendUnavailableError("no accelerator here; build on a GPU machine")

        self.fake_builder(write_model)
        with self.assertRaises(BackendUnavailableError) as caught:
            api.create_python_modelfile(self.dir, 1, 8, "int32", [1])
        self.assertEqual(str(caught.exception),
                         "backend unavailable: no accelerator here; build on a GPU machine")
        self.assertEqual(list(self.dir.iterdir()), [])

    def test_child_crash_is_a_generator_error(self):
        def write_model(variant, options, version_dir):
            raise ValueError("builder bug")

        self.fake_builder(write_model)
        with self.assertRaisesRegex(GeneratorError, "forked child failed(.|\n)*ValueError: builder bug"):
            api.create_python_modelfile(self.dir, 1, 8, "int32", [1])


if __name__ == "__main__":
    unittest.main()
