"""Unit tests of the family table, backend discovery, the installation and the expectations.

Discovery runs on hand-made backend folders (python/ only, python/ plus an
unknown foo/, NVIDIA's container set). The expectation tables are checked
against the literals CONTRACT.md section 3 and docs/models.md "Model
contract", "String states" and "Several states" print, typed here by hand: the
worked sequence 1, 2, 3, 4 -> 1, 3, 6, 10 (file 100: 101 .. 110; ONNX
strings "1".."4"; python/savedmodel strings sum from empty) and the
multi-state worked examples. The installation tests cover the KIND_GPU ->
KIND_CPU private copy, the GPU override and the errors for bad paths.
"""

import pathlib
import tempfile
import unittest

from generators.variant import Backend
from tests import expected_models
from verification import expectations as exp
from verification.expectations import steps
from verification.families import (
    FAMILIES,
    STRINGS_IDENTITY,
    STRINGS_SUM,
    Family,
    discover,
    family,
    format_discovery,
    state_output_name,
    tensor_name,
)
from verification.installation import InstallationError, from_values, has_gpu, serve_on_cpu

CONTAINER_BACKENDS = ("onnxruntime", "tensorflow", "pytorch", "tensorrt", "python")


def backend_dir(*folders, files=()):
    """A temporary backend directory holding the given folders (and plain files)."""
    root = pathlib.Path(tempfile.mkdtemp(prefix="backends."))
    for name in folders:
        (root / name).mkdir()
    for name in files:
        (root / name).write_text("not a backend\n")
    return root


class DiscoveryTest(unittest.TestCase):
    """What a backend folder lets the real-server tests cover."""

    def test_python_only_tests_python(self):
        """The pinned wheel's set: python tested, every other family reported with its reason."""
        found = discover(backend_dir("python"), gpu=False)
        self.assertEqual(found.tested, ("python",))
        self.assertEqual(set(found.not_tested), set(FAMILIES) - {"python"})
        self.assertIn("'onnxruntime/' absent", found.not_tested["onnx"])
        self.assertIn("'tensorflow/' absent", found.not_tested["savedmodel"])
        self.assertIn("it holds: python", found.not_tested["onnx"])
        self.assertEqual(found.unknown, ())

    def test_unknown_folder_is_reported(self):
        """A backend folder no family uses is listed and printed, not ignored; files are not backends."""
        found = discover(backend_dir("python", "foo", files=("README",)), gpu=False)
        self.assertEqual(found.tested, ("python",))
        self.assertEqual(found.unknown, ("foo",))
        text = format_discovery(found)
        self.assertIn("backend folder 'foo/': UNKNOWN", text)
        self.assertIn("family onnx: NOT TESTED", text)

    def test_container_without_gpu(self):
        """NVIDIA's container on a CPU machine: plans need a GPU, every other family is tested."""
        found = discover(backend_dir(*CONTAINER_BACKENDS), gpu=False)
        self.assertEqual(set(found.tested), {"onnx", "savedmodel", "python", "libtorch"})
        self.assertIn("needs a GPU", found.not_tested["plan"])
        self.assertEqual(found.unknown, ())

    def test_pytorch_names_carry_their_position(self):
        """The pytorch backend's rule (ENVIRONMENT.md): INPUT__0, OUTPUT__0, OUTPUT_STATE__1."""
        self.assertEqual(tensor_name("libtorch", "INPUT", 0), "INPUT__0")
        self.assertEqual(tensor_name("libtorch", "OUTPUT", 0), "OUTPUT__0")
        self.assertEqual([state_output_name("libtorch", k) for k in range(3)],
                         ["OUTPUT_STATE__1", "OUTPUT_STATE_1__2", "OUTPUT_STATE_2__3"])
        self.assertEqual((tensor_name("onnx", "INPUT", 0), state_output_name("onnx", 1)),
                         ("INPUT", "OUTPUT_STATE_1"))

    def test_container_with_gpu_tests_plans(self):
        """With a GPU every family whose folder is present is tested."""
        found = discover(backend_dir(*CONTAINER_BACKENDS), gpu=True)
        self.assertEqual(set(found.tested), set(FAMILIES))
        self.assertEqual(found.not_tested, {})

    def test_wanted_narrows(self):
        """Families not asked for are reported as such."""
        found = discover(backend_dir(*CONTAINER_BACKENDS), gpu=True, wanted=["onnx"])
        self.assertEqual(found.tested, ("onnx",))
        self.assertIn("not asked for", found.not_tested["python"])

    def test_missing_directory_names_the_fix(self):
        """A backend directory that does not exist is an error naming the container's path."""
        with self.assertRaisesRegex(FileNotFoundError, "/opt/tritonserver/backends"):
            discover(pathlib.Path("/nonexistent/backends"), gpu=False)

    def test_every_generated_family_has_a_row(self):
        """Each family the generator builds names its Triton backend folder here."""
        for backend in Backend:
            with self.subTest(family=backend.value):
                self.assertIn(backend.value, FAMILIES,
                              f"add {backend.value!r} to verification/families.py FAMILIES")
        with self.assertRaisesRegex(KeyError, "add one naming its Triton backend folder"):
            family("nosuchfamily")

    def test_expected_table_names_known_families(self):
        """The model-count table (tests/expected_models.py) speaks of this table's families only."""
        named = {f for row in expected_models.EXPECTED_MODELS.values() for f in row}
        self.assertEqual(named, set(FAMILIES))

    def test_summing_families_name_their_refusal(self):
        """A non-decimal string's refusal text: pinned for every summing family, so never ""."""
        for name, row in FAMILIES.items():
            with self.subTest(family=name):
                self.assertEqual(bool(row.not_decimal), row.strings == STRINGS_SUM)
        self.assertEqual(family("savedmodel").not_decimal,
                         "StringToNumberOp could not correctly convert string")
        self.assertEqual(family("libtorch").not_decimal, "stoll")
        with self.assertRaisesRegex(ValueError, "not_decimal='' with strings='sum'"):
            Family(backend="newframework", strings=STRINGS_SUM)
        with self.assertRaisesRegex(ValueError, "not_decimal='x' with strings='identity'"):
            Family(backend="newframework", strings=STRINGS_IDENTITY, not_decimal="x")


class ExpectationsTest(unittest.TestCase):
    """The expectation tables against the contract's literals."""

    WORKED = ((1, 2, 3, 4), (1, 3, 6, 10))

    def test_worked_sequence_numeric(self):
        """Every family, numeric: 1, 3, 6, 10; file initial state: 101, 103, 106, 110."""
        for name in FAMILIES:
            for dtype in ("float32", "int32", "bool"):
                with self.subTest(family=name, dtype=dtype):
                    self.assertEqual(exp.expected_outputs(name, dtype, *self.WORKED), (1, 3, 6, 10))
                    self.assertEqual(exp.expected_outputs(name, dtype, *self.WORKED, "zero"),
                                     (1, 3, 6, 10))
                    self.assertEqual(exp.expected_outputs(name, dtype, *self.WORKED, "file"),
                                     (101, 103, 106, 110))

    def test_strings_differ_only_where_the_contract_says(self):
        """ONNX strings are identities; python and savedmodel sum from empty; plans have none."""
        for initial in ("none", "zero", "file"):
            with self.subTest(initial=initial):
                self.assertEqual(exp.expected_outputs("onnx", "object", *self.WORKED, initial),
                                 (1, 2, 3, 4))
                for name in ("python", "savedmodel"):
                    self.assertEqual(exp.expected_outputs(name, "object", *self.WORKED, initial),
                                     (1, 3, 6, 10))
        with self.assertRaisesRegex(ValueError, "plan has no string models"):
            exp.expected_outputs("plan", "object", *self.WORKED)

    def test_tables_hold_running_sums(self):
        """Each (values, sums) table's sums are its values' running sums, restarted on START."""
        tables = [exp.SIMPLE, exp.LENGTH1, exp.AFTER_END, *exp.HALF_BATCH.values(),
                  *exp.FULL_BATCH.values(), *exp.SKIP_BATCH.values()]
        for values, sums in tables:
            with self.subTest(values=values):
                self.assertEqual(len(values), len(sums))
                self.assertEqual(sums, tuple(sum(values[:i + 1]) for i in range(len(values))))
        self.assertEqual(tuple(s.value for s in exp.NO_END_STEPS), exp.NO_END[0])
        self.assertEqual(exp.NO_END[1], (1, 3, 42, 51))
        self.assertEqual(exp.SIMPLE[1][-1], 45)

    def test_multi_state_worked_examples(self):
        """docs/models.md "Several states": 2 pairs 5, 15, 30, 50 (file 505 .. 550); 3 pairs 14 .. 140."""
        table = exp.MULTI_STATE_EXPECTED
        self.assertEqual(table["none"][2]["worked"], (5, 15, 30, 50))
        self.assertEqual(table["file"][2]["worked"], (505, 515, 530, 550))
        self.assertEqual(table["none"][3]["worked"], (14, 42, 84, 140))
        self.assertEqual(table["file"][3]["worked"], (1414, 1442, 1484, 1540))
        for initial, pairs in table.items():
            for count, rows in pairs.items():
                with self.subTest(initial=initial, pairs=count):
                    weight = sum(k * k for k in range(1, count + 1))  # sum of (k + 1)^2
                    base = 100 * weight if initial == "file" else 0
                    self.assertEqual(rows[2001], rows["worked"])
                    self.assertEqual(rows["restart"],
                                     tuple(weight * s + base for s in (1, 3, 42, 51)))
                    self.assertEqual(rows[2002], tuple(weight * s + base for s in (10, 30, 60, 100)))

    def test_name_order_bug_differs_from_step_two(self):
        """The known-bug tables agree with the contract on step 1 only (then the swap shows)."""
        for count, rows in exp.MULTI_STATE_NAME_ORDER_BUG.items():
            right = exp.MULTI_STATE_EXPECTED["none"][count]
            for table, outputs in rows.items():
                with self.subTest(pairs=count, table=table):
                    self.assertEqual(outputs[0], right[table][0])
                    self.assertNotEqual(outputs[1], right[table][1])
        self.assertEqual(exp.MULTI_STATE_NAME_ORDER_BUG[2]["worked"][1], 14)  # issue 17: not 15

    def test_coverage_worked_sequences(self):
        """CONTRACT.md's literals for the state-coverage models, per initial state and kind."""
        self.assertEqual(exp.coverage_outputs("int8", "worked"), (1, 3, 6, 10))
        self.assertEqual(exp.coverage_outputs("bfloat16", "worked", "zero"), (1, 3, 6, 10))
        self.assertEqual(exp.coverage_outputs("uint64", "worked", "file"), (101, 103, 106, 110))
        self.assertEqual(exp.coverage_outputs("boolean", "worked"), (True, True, False, True))
        self.assertEqual(exp.coverage_outputs("boolean", "worked", "file"),
                         (False, False, True, False))
        self.assertEqual(exp.coverage_outputs("int32", "worked", "zero", (2,)), (101, 203, 306, 410))
        self.assertEqual(exp.coverage_outputs("int32", "worked", "zero", ()), (1, 3, 6, 10))
        self.assertEqual((exp.WIDE_VALUES, exp.WIDE_OUTPUTS),
                         (((1, 2, 3), (4, 5, 6)), ((1, 2, 3), (5, 7, 9))))
        self.assertEqual([s.value for s in exp.coverage_steps("float16", "worked")], [1, 2, 3, 4])
        self.assertEqual([s.value for s in exp.coverage_steps("boolean", "worked")],
                         [True, False, True, True])

    def test_coverage_tables_follow_the_rules(self):
        """Numeric rows are running sums (restarted at START, +100 from a file), boolean rows XORs."""
        for initial, offset in (("none", 0), ("zero", 0), ("file", 100)):
            for table in ("worked", "restart"):
                with self.subTest(initial=initial, table=table):
                    sent = exp.coverage_steps("int32", table)
                    self.assertEqual(exp.coverage_outputs("int32", table, initial),
                                     _running(sent, offset, lambda a, b: a + b))
                    flags = exp.coverage_steps("boolean", table)
                    self.assertEqual(exp.coverage_outputs("boolean", table, initial),
                                     _running(flags, offset == 100, lambda a, b: a != b))
            for corrid, values in exp.PADDED_VALUES.items():
                with self.subTest(initial=initial, corrid=corrid):
                    self.assertEqual(exp.coverage_outputs("uint8", corrid, initial),
                                     _running(steps(values), offset, lambda a, b: a + b))
                    flags = exp.BOOLEAN_PADDED_VALUES[corrid]
                    self.assertEqual(exp.coverage_outputs("boolean", corrid, initial),
                                     _running(steps(flags), offset == 100, lambda a, b: a != b))

    def test_sum_count_rows(self):
        """`_state_sum_count`: OUTPUT = running sum + 100 * steps since START."""
        rows = [("worked", exp.coverage_steps("int32", "worked")),
                ("restart", exp.coverage_steps("int32", "restart"))]
        rows += [(c, steps(v)) for c, v in exp.PADDED_VALUES.items()]
        for table, sent in rows:
            with self.subTest(table=table):
                counts = _running(sent, 0, lambda a, _: a + 1)
                sums = _running(sent, 0, lambda a, b: a + b)
                self.assertEqual(exp.coverage_outputs("int32", table, "zero", (2,)),
                                 tuple(s + 100 * c for s, c in zip(sums, counts, strict=True)))

    def test_widths_rows(self):
        """Variable widths: element-wise running sums (XOR for bool), each row as wide as sent."""
        for corrid, values in exp.WIDTHS_VALUES.items():
            with self.subTest(corrid=corrid):
                first, second = values
                self.assertEqual(exp.WIDTHS_OUTPUTS[corrid],
                                 (first, tuple(a + b for a, b in zip(first, second, strict=True))))
                first, second = exp.BOOLEAN_WIDTHS_VALUES[corrid]
                self.assertEqual(len(first), len(values[0]))
                self.assertEqual(exp.BOOLEAN_WIDTHS_OUTPUTS[corrid],
                                 (first, tuple(a != b for a, b in zip(first, second, strict=True))))

    def test_coverage_values_fit_every_type(self):
        """Every value sent or expected is a small integer: int8 holds it, bfloat16 exactly."""
        numbers = [s.value for t in ("worked", "restart") for s in exp.coverage_steps("int8", t)]
        numbers += [v for values in exp.PADDED_VALUES.values() for v in values]
        numbers += [v for row in exp.WIDTHS_OUTPUTS.values() for e in row for v in e]
        for initial in ("none", "zero", "file"):
            for table in ("worked", "restart", *exp.PADDED_VALUES):
                numbers += exp.coverage_outputs("int8", table, initial)
        self.assertLessEqual(max(numbers), 127)
        self.assertGreaterEqual(min(numbers), 0)

    def test_the_module_cites_this_test(self):
        """expectations.py names the file that checks its tables, and that file is this one."""
        cited = "tests/e2e/families_test.py"
        self.assertIn(cited, exp.__doc__)
        self.assertTrue(pathlib.Path(__file__).as_posix().endswith(cited), __file__)

    def test_load_output(self):
        """Load run: step k of a sequence sending v is k * v (ONNX strings: v)."""
        self.assertEqual(exp.load_output("python", "int32", 7, 2), 21)
        self.assertEqual(exp.load_output("onnx", "object", 7, 2), 7)
        self.assertEqual(exp.load_output("savedmodel", "object", 7, 2), 21)


def _running(sent, initial, add):
    """The running value of steps from `initial`, restarted at each START."""
    out, value = [], initial
    for step in sent:
        value = add(initial if step.start else value, step.value)
        out.append(value)
    return tuple(out)


class InstallationTest(unittest.TestCase):
    """Choosing the server, the GPU probe override and the CPU copy."""

    def test_default_is_the_pinned_wheel(self):
        """No variable set: the pinned server and its assembled python backend."""
        chosen = from_values()
        self.assertTrue(chosen.pinned_binary)
        self.assertIsNone(chosen.backend_dir)

    def test_triton_home(self):
        """TRITON_HOME gives bin/tritonserver and backends/; a missing part names the fix."""
        home = backend_dir("bin", "backends")
        (home / "bin" / "tritonserver").write_text("#!/bin/sh\n")
        chosen = from_values(home=str(home))
        self.assertEqual(chosen.binary, (home / "bin" / "tritonserver").resolve())
        self.assertEqual(chosen.backend_dir, (home / "backends").resolve())
        with self.assertRaisesRegex(InstallationError, "TRITON_HOME=.*must hold bin/tritonserver"):
            from_values(home=str(backend_dir("backends")))

    def test_backend_dir_alone_keeps_the_pinned_server(self):
        """TRITON_BACKEND_DIR alone: the pinned wheel's server with that folder."""
        folder = backend_dir("python")
        chosen = from_values(backend_dir=str(folder))
        self.assertTrue(chosen.pinned_binary)
        self.assertEqual(chosen.backend_dir, folder.resolve())
        self.assertIn("the pinned wheel's tritonserver", chosen.source)
        with self.assertRaisesRegex(InstallationError, "TRITON_BACKEND_DIR=/nonexistent"):
            from_values(backend_dir="/nonexistent")

    def test_gpu_override(self):
        """IMPLICIT_E2E_GPU=0|1 decides; another value is an error naming the choices."""
        self.assertTrue(has_gpu({"IMPLICIT_E2E_GPU": "1"}))
        self.assertFalse(has_gpu({"IMPLICIT_E2E_GPU": "0"}))
        with self.assertRaisesRegex(InstallationError, "use 0 or 1"):
            has_gpu({"IMPLICIT_E2E_GPU": "yes"})

    def test_serve_on_cpu_rewrites_gpu_groups_only(self):
        """KIND_GPU becomes KIND_CPU in every config; KIND_CPU configs stay byte-identical."""
        repo = backend_dir("onnx_sequence_int32", "python_sequence_int32")
        gpu = "instance_group {\n  kind: KIND_GPU\n}\n"
        cpu = "instance_group {\n  kind: KIND_CPU\n}\n"
        (repo / "onnx_sequence_int32" / "config.pbtxt").write_text('name: "onnx"\n' + gpu)
        (repo / "python_sequence_int32" / "config.pbtxt").write_text('name: "python"\n' + cpu)
        self.assertEqual(serve_on_cpu(repo), 1)
        self.assertEqual((repo / "onnx_sequence_int32" / "config.pbtxt").read_text(),
                         'name: "onnx"\n' + cpu)
        self.assertEqual((repo / "python_sequence_int32" / "config.pbtxt").read_text(),
                         'name: "python"\n' + cpu)


if __name__ == "__main__":
    unittest.main()
