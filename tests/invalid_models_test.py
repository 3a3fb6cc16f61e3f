"""The invalid-model repository: its definition, each defect, and the built //models:invalid_repo.

- configs/invalid_models.json expands (generators/invalid_models.py) into
  the literal counts of tests/expected_models.py, every base a matrix model,
  and a malformed definition (unknown defect, family, base or key) is
  refused naming it;
- each defect (generators/invalid_repo.py) changes exactly one thing of a
  valid model: the config field (or the data file) it names, nothing else,
  checked field by field against the base;
- every defect the catalogue says a bug lets load (verification/catalogue.json)
  exists for the family the entry names;
- the built repository (IMPLICIT_INVALID_REPO) holds the table's models of
  every family built here (plans need a GPU: without one they are listed as
  not built), each with its mentions resolved, and is kept out of
  //models:implicit_repo's folders.
"""

import json
import os
import pathlib
import shutil
import struct
import tempfile
import unittest

from generators import invalid_models, invalid_repo
from generators.errors import SpecError
from generators.model_config import build_config, config_text, initial_state_files, parse_config
from generators.variant import Variant
from tests.expected_models import EXPECTED_INVALID_MODELS, INVALID_REPOSITORY
from verification import catalogue, served_config

REPOSITORY, MODELS = invalid_models.expand_invalid()
BY_NAME = {m.name: m for m in MODELS}


def _counts(families):
    counts = {}
    for family in families:
        counts[family] = counts.get(family, 0) + 1
    return counts


class DefinitionTest(unittest.TestCase):
    """configs/invalid_models.json, expanded."""

    def test_counts_are_the_literal_table(self):
        """Per family, the hand-typed counts of tests/expected_models.py."""
        self.assertEqual(REPOSITORY, INVALID_REPOSITORY)
        self.assertEqual(_counts(m.family for m in MODELS), EXPECTED_INVALID_MODELS)

    def test_every_defect_is_used_and_named_once_per_family(self):
        """Each Defect has a mutation and at least one model; names are <family>_<defect>."""
        self.assertEqual(set(invalid_repo.DEFECTS), set(invalid_models.Defect))
        self.assertEqual({m.defect for m in MODELS}, set(invalid_models.Defect))
        for model in MODELS:
            self.assertEqual(model.name, f"{model.family}_{model.defect.value}")

    def test_malformed_definitions_are_refused(self):
        """Unknown defect, family, base or key: an error naming it."""
        good = invalid_models.load()
        first = good["defects"][0]
        cases = {
            "defect 'colour' is not known": dict(first, name="colour"),
            "'cobol' is not a valid Backend": dict(first, families=["cobol"]),
            "base model 'nowhere/onnx' is not in the variant matrix": dict(first, base="nowhere/{family}"),
            "unknown keys \\['extra'\\]": dict(first, extra=1),
        }
        for message, defect in cases.items():
            with self.subTest(message=message):
                with self.assertRaisesRegex((SpecError, ValueError), message):
                    invalid_models.expand_invalid(dict(good, defects=[defect]))

    def test_catalogued_defects_exist(self):
        """A catalogue entry's defects are built for the families it names."""
        for entry in catalogue.load().values():
            for defect in entry.defects:
                for family in entry.families:
                    with self.subTest(entry=entry.id, defect=defect, family=family):
                        self.assertIn(f"{family}_{defect}", BY_NAME)


class DefectTest(unittest.TestCase):
    """Each defect changes one thing of the base model."""

    def setUp(self):
        """A scratch folder for base and invalid models."""
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="invalid_models_test."))
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)

    def base(self, model):
        """The base model's folder: its generated config and initial-state files."""
        repository, name = model.base.split("/")
        folder = self.dir / "bases" / name
        folder.mkdir(parents=True, exist_ok=True)
        spec = {"backend": model.family, "dtype": "object" if "object" in name else "int32",
                "shape": [1], "max_batch": 0 if "nobatch" in name else 8,
                "initial_state": "file" if "initial_state_file" in repository else "none"}
        variant = Variant.from_spec(spec)
        if spec["initial_state"] == "file":
            (folder / "initial_state").mkdir(exist_ok=True)
            for file, data in initial_state_files(variant).items():
                (folder / "initial_state" / file).write_bytes(data)
        (folder / "config.pbtxt").write_text(config_text(build_config(variant)))
        return folder

    def test_one_difference_each(self):
        """Config field by field (served-config rendering) and data files: one change, the defect's."""
        expected_paths = {
            "state_dtype": "sequence_batching.state[0].data_type",
            "state_input_name": "sequence_batching.state[0].input_name",
            "state_output_name": "sequence_batching.state[0].output_name",
            "initial_state_dtype": "sequence_batching.state[0].initial_state[0].data_type",
            "initial_state_variable_dims": "sequence_batching.state[0].initial_state[0].dims",
            "two_initial_states": "sequence_batching.state[0].initial_state",
            "data_file_missing": "sequence_batching.state[0].initial_state[0].data_file",
            "data_file_short": "initial_state/input_state_data",
            "unindexed_state_names": "sequence_batching.state[0]",
            "batched_string_state": "max_batch_size",
        }
        for model in MODELS:
            with self.subTest(model=model.name):
                base = self.base(model)
                entry = invalid_repo.build(model, base, self.dir / "out")
                built = self.dir / "out" / model.name
                before = served_config.expected(parse_config((base / "config.pbtxt").read_text()))
                after = served_config.expected(parse_config((built / "config.pbtxt").read_text()))
                before["name"] = after["name"]
                changed = _changed_paths("", before, after)
                changed += [f"initial_state/{p.name}" for p in sorted((base / "initial_state").glob("*"))
                            if p.read_bytes() != (built / "initial_state" / p.name).read_bytes()
                            ] if (base / "initial_state").is_dir() else []
                want = expected_paths[model.defect.value]
                self.assertTrue(changed and all(c.startswith(want) for c in changed),
                                f"{model.name}: changed {changed}, want only {want}")
                self.assertNotIn("{", " ".join(entry["mentions"]))

    def test_short_file_is_half_an_element(self):
        """data_file_short leaves 2 of the 4 bytes of INT32 100."""
        model = BY_NAME["onnx_data_file_short"]
        invalid_repo.build(model, self.base(model), self.dir / "out")
        self.assertEqual((self.dir / "out" / model.name / "initial_state" / "input_state_data")
                         .read_bytes(), struct.pack("<i", 100)[:2])


def _changed_paths(path, before, after):
    if isinstance(before, dict) and isinstance(after, dict):
        return [p for k in sorted(set(before) | set(after))
                for p in _changed_paths(f"{path}.{k}" if path else k, before.get(k), after.get(k))]
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        return [p for i, (b, a) in enumerate(zip(before, after, strict=True))
                for p in _changed_paths(f"{path}[{i}]", b, a)]
    return [] if before == after else [path]


class BuiltRepositoryTest(unittest.TestCase):
    """//models:invalid_repo as Bazel built it."""

    @classmethod
    def setUpClass(cls):
        """Read its manifest."""
        cls.root = pathlib.Path(os.environ["IMPLICIT_INVALID_REPO"])
        cls.manifest = json.loads((cls.root / "manifest.json").read_text())

    def test_every_model_built_or_listed_as_not_built(self):
        """Built plus not built: the table's counts; only plans (GPU) may be left out."""
        built = _counts(m["family"] for m in self.manifest["models"])
        not_built = _counts(n.split("_")[0] for n in self.manifest["not_built"])
        self.assertEqual({f: built.get(f, 0) + not_built.get(f, 0) for f in EXPECTED_INVALID_MODELS},
                         EXPECTED_INVALID_MODELS)
        self.assertLessEqual(set(not_built), {"plan"})
        for model in self.manifest["models"]:
            folder = self.root / self.manifest["repository"] / model["name"]
            self.assertEqual(parse_config((folder / "config.pbtxt").read_text()).name, model["name"])

    def test_mentions_resolved(self):
        """{state}, {output} and {file} are replaced by the model's own names."""
        for model in self.manifest["models"]:
            self.assertNotIn("{", " ".join(model["mentions"]), model["name"])
        self.assertEqual(next(m for m in self.manifest["models"]
                              if m["name"] == "libtorch_initial_state_dtype")["mentions"],
                         ["initial_state", "INPUT_STATE__1"])


if __name__ == "__main__":
    unittest.main()
