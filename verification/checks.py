"""The real-server checks: the generated models on a real tritonserver, every family it has a backend for.

These `unittest` classes are what `bazel test //tests:real_server_e2e_test`
(tests/e2e/implicit_state_e2e_test.py) and `bazel run //verification:verify`
run; the catalogue's own reproducers are in verification/catalogue_checks.py.

Which server runs and which families it tests is decided once
(verification.served_repository.e2e_setup): the pinned nvidia-pytriton
wheel's server (python backend only), or a Triton installation named by
TRITON_HOME, or TRITON_SERVER and/or TRITON_BACKEND_DIR; E2E_FAMILIES
narrows the families (each Bazel target names its own). `CoverageTest`
prints which families are tested, which are not and why, and any backend
folder the tests do not know; the built tree must hold exactly the models
of tests/expected_models.py's literal table for every tested family.

For each repository of the built tree (tests.repo_location.implicit_repo;
under Bazel, IMPLICIT_REPO) one test class starts the server on it, loads
every model of the tested families in it, and drives them with tritonclient
over HTTP and gRPC as Triton's QA clients do (reference section 7): single
sequences, START mid-sequence, parallel sequences on batched models,
ragged variable-shape sequences, zero and file initial states, strings,
dyna (oldest-strategy) models, the errors Triton itself returns, and a load
run; models with several state pairs get the worked example, a mid-sequence
restart and parallel sequences (on the order repository, where catalogue
entry 8586 shows, an answer may instead be the bug's prediction, computed
from its rule: verification/predictions.py). The state-coverage repositories
(every state dtype, a wider state, a state of another shape, the
single-buffer option) get `CoverageChecks`: their own tables of small
integers, sent to every model of the repository side by side in rounds
(the worked sequence, START mid-sequence, four batched sequences with
padding slots, variable widths), each answer's dtype asserted, a
scalar-state model judged against catalogue entries 3901 and
pytorch-scalar-output. Expected values are the literal tables of
verification.expectations, from CONTRACT.md section 3 and the upstream tests,
differing by family only where the contract does (string models). Server
logs go to $TEST_UNDECLARED_OUTPUTS_DIR when set; a failing class prints its
server's log tail, and any error line in a log fails its class
(verification.server_log). A repository that, by that table, holds no model
of a tested family has no server to start: `load_tests` leaves its class
out and `CoverageTest.test_report` names it.
"""

import json
import os
import sys
import unittest

import numpy as np

from tests.expected_models import EXPECTED_MODELS, expected, manifest_counts, mismatches
from verification import catalogue, catalogue_checks, predictions, report
from verification import expectations as exp
from verification import sequence_client as client
from verification.expectations import Step, steps
from verification.families import STRINGS_IDENTITY, STRINGS_SUM, family, format_discovery
from verification.report import WRONG_ANSWERS
from verification.served_repository import (
    ServedRepository,
    built_root,
    e2e_setup,
    holds_a_tested_family,
)

# What Triton answers for requests the sequence batcher refuses.
NO_CORRID = "must specify a non-zero or non-empty correlation ID"
NO_START = "must specify the START flag on the first request of the sequence"
BATCH_2 = "must specify batch-size 1 due to requirements of sequence batcher"
STATE_OUTPUT = "unexpected inference output '{}'"
# Families that must be tested (a NOT TESTED one fails): --config=real_backends sets it.
REQUIRED_VAR = "E2E_REQUIRED_FAMILIES"
LOAD_SEQUENCES = 64
LOAD_STEPS = 50


class RepositoryChecks(ServedRepository):
    """Checks every model of the tested families of one repository; mixed into a TestCase."""

    def assert_outputs(self, model, outputs, table, width=1):
        """Outputs must be the contract's answer for the model's family to (values, sums)."""
        values, sums = table
        want = exp.expected_outputs(model.family, model.dtype, values, sums, model.initial_state)
        self.assert_values(model, outputs, want, width)

    def check_sequence(self, corrid, sequence, table, width=1):
        """Send a sequence to every model at once over gRPC, then over HTTP (sequence_client.run_rounds)."""
        rounds = [[client.Request(model, corrid, step, width) for model in self.models]
                  for step in sequence]
        for protocol in ("grpc", "http"):
            url = self.server.grpc_url if protocol == "grpc" else self.server.http_url
            answers = client.run_rounds(protocol, url, rounds)
            for model in self.models:
                with self.subTest(model=model.name, protocol=protocol):
                    self.assert_outputs(model, answers[(model.name, corrid)], table, width)

    def check_parallel(self, tables, widths=None, lockstep=False):
        """Run sequences in parallel gRPC streams on each batched model."""
        widths = widths or {}
        for model in self.batched_models():
            with self.subTest(model=model.name):
                sequences = {c: (steps(v), widths.get(c, 1)) for c, (v, _) in tables.items()}
                results = client.stream_sequences(self.server.grpc_url, model, sequences,
                                                  lockstep=lockstep)
                for corrid, table in tables.items():
                    self.assert_outputs(model, results[corrid], table, widths.get(corrid, 1))

    def test_simple_sequence(self):
        """Values 1..9 in one sequence: the running sum ends at 45."""
        self.check_sequence(5, steps(exp.SIMPLE[0]), exp.SIMPLE)

    def test_length1_sequence(self):
        """A START+END sequence of one request returns its input."""
        self.check_sequence(99, steps(exp.LENGTH1[0]), exp.LENGTH1)

    def test_no_sequence_end(self):
        """START in the middle of a sequence resets its state."""
        self.check_sequence(4566, exp.NO_END_STEPS, exp.NO_END)

    def test_half_batch(self):
        """Two parallel sequences in an 8-slot batch."""
        self.check_parallel(exp.HALF_BATCH)

    def test_full_batch(self):
        """Four parallel sequences of equal length."""
        self.check_parallel(exp.FULL_BATCH)

    def test_skip_batch(self):
        """Four parallel sequences of different lengths (slots go idle)."""
        self.check_parallel(exp.SKIP_BATCH)

    def test_triton_errors(self):
        """Triton's own refusals come back cleanly and the server survives them."""
        for model in self.models:
            for protocol in self.connections:
                with self.subTest(model=model.name, protocol=protocol):
                    self.assert_refused(NO_CORRID, protocol, model, 0, Step(1, start=True))
                    self.assert_refused(NO_START, protocol, model, 37469245, Step(1))
                    state = model.state_output_name(0)
                    self.assert_refused(STATE_OUTPUT.format(state), protocol, model, 1,
                                        Step(1, True, True), outputs=(model.output_name, state))
                    if model.batched:
                        self.assert_refused(BATCH_2, protocol, model, 27,
                                            Step(1, True, True), batch=2)
        self.assertTrue(self.server.is_ready())
        self.check_sequence(5, steps(exp.SIMPLE[0]), exp.SIMPLE)

    def test_request_after_end_needs_start(self):
        """A request after END is a new sequence and must carry START."""
        for model in self.models:
            for protocol, connection in self.connections.items():
                with self.subTest(model=model.name, protocol=protocol):
                    outputs = client.run_sequence(
                        protocol, connection, model, 3, steps(exp.AFTER_END[0]))
                    self.assert_outputs(model, outputs, exp.AFTER_END)
                    self.assert_refused(NO_START, protocol, model, 3, Step(55))

    def test_non_decimal_string(self):
        """A summing string model refuses "x1" for that request only; an identity returns it."""
        (first, bad, last), (sum1, _, sum2) = exp.NOT_DECIMAL_SEQUENCE
        for model in (m for m in self.models if m.is_string):
            rule = family(model.family).strings
            for protocol, connection in self.connections.items():
                with self.subTest(model=model.name, protocol=protocol):
                    start = client.infer(protocol, connection, model, 77, Step(first, start=True))
                    if rule == STRINGS_SUM:
                        # Each summing family's own error text (families.py requires one).
                        self.assert_refused(family(model.family).not_decimal, protocol, model,
                                            77, Step(bad))
                        end = client.infer(protocol, connection, model, 77, Step(last, end=True))
                        self.assert_values(model, [start, end], (sum1, sum2))
                    else:
                        self.assertEqual(rule, STRINGS_IDENTITY)
                        echo = client.infer(protocol, connection, model, 77, Step(bad, end=True))
                        self.assert_values(model, [start, echo], (first, bad))


class VariableShapeChecks:
    """Checks only variable-shape repositories can run; mixed in after RepositoryChecks."""

    def test_wide_sequence(self):
        """Width-4 data: the width-1 initial state broadcasts, elements add up."""
        self.check_sequence(6, steps(exp.SIMPLE[0]), exp.SIMPLE, width=4)

    def test_ragged_batch(self):
        """Parallel sequences of widths 2, 2, 1 and 3 on variable-shape models, step by step.

        Every sequence sends step k once all have their answer to step k - 1:
        Triton must keep the widths apart (it batches only equal INPUT
        shapes), but as released it also batches a sequence's first step
        (state width 1) with another's later step (state width 2), which no
        model can answer right (docs/verification.md, "Triton batches differently
        shaped states"); the lockstep keeps such executions out of this check.
        """
        self.check_parallel(exp.FULL_BATCH, exp.RAGGED_WIDTHS, lockstep=True)


class LoadChecks:
    """The load run; mixed into one repository's test class only."""

    def test_load(self):
        """Per family: 64 concurrent sequences x 50 steps across its batched models."""
        by_family = {}
        for model in self.batched_models():
            by_family.setdefault(model.family, []).append(model)
        for name, models in sorted(by_family.items()):
            with self.subTest(family=name):
                self.check_load(name, models)
        self.assertTrue(self.server.is_ready())

    def check_load(self, family_name, models):
        """One family's load run: every answer right, every request answered."""
        names = [model.name for model in models]
        before = client.inference_counts(self.connections["http"], names)
        report = client.load_run(self.server.grpc_url, models, LOAD_SEQUENCES, LOAD_STEPS)
        after = client.inference_counts(self.connections["http"], names)
        inferences, executions = (a - b for a, b in zip(after, before, strict=True))
        for wrong in report.wrong:
            WRONG_ANSWERS[wrong[0]] += 1
        sys.stderr.write(
            f"\nload [{family_name}]: {LOAD_SEQUENCES} sequences x {LOAD_STEPS} steps on"
            f" {len(models)} models: {report.requests} requests in {report.seconds:.2f}s ="
            f" {report.requests_per_second:.0f} requests/s, {len(report.wrong)} wrong,"
            f" {inferences / max(executions, 1):.2f} requests per execution\n")
        self.assertEqual(report.wrong[:5], [], f"{len(report.wrong)} wrong answers")
        self.assertEqual(report.requests, LOAD_SEQUENCES * LOAD_STEPS)


class FixedShapeTest(RepositoryChecks, LoadChecks, unittest.TestCase):
    """Shape [1], batch 8 and nobatch, no initial state; also the load run."""

    REPOSITORY = "qa_sequence_implicit_model_repository"


class FixedShapeZeroStateTest(RepositoryChecks, unittest.TestCase):
    """Shape [1] with a zero initial state."""

    REPOSITORY = "qa_sequence_initial_state_implicit_model_repository"


class FixedShapeFileStateTest(RepositoryChecks, unittest.TestCase):
    """Shape [1] with a file initial state of 100: every output is +100 (strings: +0)."""

    REPOSITORY = "qa_sequence_initial_state_file_implicit_model_repository"


class VariableShapeTest(RepositoryChecks, VariableShapeChecks, unittest.TestCase):
    """Shape [-1], batch 8, no initial state."""

    REPOSITORY = "qa_variable_sequence_implicit_model_repository"


class VariableShapeZeroStateTest(RepositoryChecks, VariableShapeChecks, unittest.TestCase):
    """Shape [-1] with a zero initial state."""

    REPOSITORY = "qa_variable_sequence_initial_state_implicit_model_repository"


class VariableShapeFileStateTest(RepositoryChecks, VariableShapeChecks, unittest.TestCase):
    """Shape [-1] with a file initial state of 100 (width 1, broadcast; strings: empty)."""

    REPOSITORY = "qa_variable_sequence_initial_state_file_implicit_model_repository"


class DynaTest(RepositoryChecks, unittest.TestCase):
    """Oldest-strategy int32 models (CORRID, END declared; Triton fills CORRID), batch and nobatch."""

    REPOSITORY = "qa_dyna_sequence_implicit_model_repository"


class CoverageChecks(ServedRepository):
    """The state-coverage repositories: small integers in every state type, many models at once.

    Each check sends its sequences to every model of the repository side by
    side, round by round (sequence_client.run_rounds: each model has its own
    sequence batcher), and compares each model's answers with its literal
    row of verification.expectations (COVERAGE_*, BOOLEAN_*, SUM_COUNT_*),
    typed as the model's OUTPUT (the state's dtype: a wider state answers
    int64 or float32). A scalar-state model (state dims []) of a family and
    batching that verification.expectations.SCALAR_STATE_BUG names may
    instead answer exactly as released Triton does (catalogue entries 3901
    and pytorch-scalar-output): recorded as the bug present, not a failure;
    any other scalar model, and any third answer, must be the contract's.
    """

    def coverage_models(self, batched=False):
        """The models a check drives (batched only: `batched`)."""
        return self.batched_models() if batched else list(self.models)

    def judge(self, model, key, sent, answers, want, width=1):
        """Assert a sequence's answers: the contract's, or (scalar state) a catalogued prediction.

        A scalar-state model of a (family, batching) that
        verification.expectations.SCALAR_STATE_BUG names answering exactly
        as predicted is that entry present; the contract's answers are it
        fixed (recorded either way); anything else fails.
        """
        if model.state_dims == exp.SCALAR_DIMS:
            report.CHECKS_RUN.add("scalar_state")
            bug = exp.SCALAR_STATE_BUG.get((model.family, model.batched))
            if bug is not None:
                entry, predicted = bug
                right = self.values_equal(model, answers, want, width)
                if not right and _as_predicted(model, sent, answers, predicted):
                    report.observe(entry, model, catalogue.PRESENT, f"{key}: {predicted}",
                                   test_class=type(self).__name__)
                    return
                report.observe(entry, model, catalogue.FIXED if right else catalogue.WRONG,
                               f"{key}: {[_shown(a) for a in answers]}")
        self.assert_values(model, answers, want, width)

    def check_rounds(self, protocol, models, sequences, wants, widths=None):
        """Run `sequences` on every model side by side; compare with `wants`.

        Args:
            protocol: "http" or "grpc".
            models: the models to drive.
            sequences: model -> corrid -> the rounds its steps go in ([(round, Step)]).
            wants: model -> corrid -> the expected outputs.
            widths: corrid -> data width (default 1).
        """
        widths = widths or {}
        rounds = {}
        for model in models:
            for corrid, placed in sequences(model).items():
                for index, step in placed:
                    rounds.setdefault(index, []).append(
                        client.Request(model, corrid, step, widths.get(corrid, 1)))
        url = self.server.grpc_url if protocol == "grpc" else self.server.http_url
        answers = client.run_rounds(protocol, url, [rounds[i] for i in sorted(rounds)])
        for model in models:
            sent = sequences(model)
            for corrid, want in wants(model).items():
                with self.subTest(model=model.name, protocol=protocol, sequence=corrid):
                    self.judge(model, corrid, [step for _, step in sent[corrid]],
                               answers[(model.name, corrid)], want, widths.get(corrid, 1))

    def check_table(self, table, corrid, protocols=("grpc", "http")):
        """One sequence of `table` per model, every model at once, over each protocol."""
        def sequences(model):
            return {corrid: list(enumerate(exp.coverage_steps(model.dtype, table)))}

        def wants(model):
            return {corrid: exp.coverage_outputs(model.dtype, table, model.initial_state,
                                                 model.state_dims)}

        for protocol in protocols:
            self.check_rounds(protocol, self.coverage_models(), sequences, wants)

    def test_worked_sequence(self):
        """CONTRACT.md's worked sequence: 1, 2, 3, 4 -> 1, 3, 6, 10 (file 101 .. 110; XOR for bool)."""
        self.check_table("worked", 3501)

    def test_start_mid_sequence(self):
        """START again on the third request resets the state: 1, 2, START 5, 9 -> 1, 3, 5, 14."""
        self.check_table("restart", 3502)

    def test_padded_batch(self):
        """Four sequences per batched model, two ending first: their idle slots are padding.

        Each START goes in a round of its own (3601, 3602, 3603, 3604: the
        later ones take the higher slots), then a round with every
        sequence's next step, where 3601 and 3602 end, then the last round
        of 3603 and 3604 alone, above two idle slots. A scalar-state model's
        prediction is exact for one request per execution only, so those
        models are left out here.
        """
        def sequences(model):
            out = {}
            for order, (corrid, values) in enumerate(exp.padded_values(model.dtype).items()):
                placed = steps(values)
                out[corrid] = [(order, placed[0])] + [(3 + k, s) for k, s in enumerate(placed[1:], 1)]
            return out

        def wants(model):
            return {c: exp.coverage_outputs(model.dtype, c, model.initial_state, model.state_dims)
                    for c in exp.PADDED_VALUES}

        models = [m for m in self.coverage_models(batched=True) if m.state_dims != exp.SCALAR_DIMS]
        self.check_rounds("grpc", models, sequences, wants)


class VariableCoverageChecks:
    """Variable-shape state-coverage checks; mixed in after CoverageChecks."""

    def test_wide_sequence(self):
        """Width 3: [1, 2, 3] then [4, 5, 6] -> [1, 2, 3], [5, 7, 9] (bool: XOR per element)."""
        def sequences(model):
            boolean = model.dtype == "boolean"
            return {3503: list(enumerate(steps(
                exp.BOOLEAN_WIDE_VALUES if boolean else exp.WIDE_VALUES)))}

        def wants(model):
            return {3503: exp.BOOLEAN_WIDE_OUTPUTS if model.dtype == "boolean"
                    else exp.WIDE_OUTPUTS}

        for protocol in ("grpc", "http"):
            self.check_rounds(protocol, self.coverage_models(), sequences, wants, {3503: 3})

    def test_widths_batch(self):
        """Batched sequences of widths 3, 2, 1 and 3 side by side, in lockstep."""
        def values(model):
            return exp.BOOLEAN_WIDTHS_VALUES if model.dtype == "boolean" else exp.WIDTHS_VALUES

        def sequences(model):
            return {c: list(enumerate(steps(v))) for c, v in values(model).items()}

        def wants(model):
            return (exp.BOOLEAN_WIDTHS_OUTPUTS if model.dtype == "boolean"
                    else exp.WIDTHS_OUTPUTS)

        widths = {c: len(v[0]) for c, v in exp.WIDTHS_VALUES.items()}
        self.check_rounds("grpc", self.coverage_models(batched=True), sequences, wants, widths)


class StateTypeTest(CoverageChecks, unittest.TestCase):
    """Every state dtype, INPUT and OUTPUT of that dtype, shape [1], no initial state."""

    REPOSITORY = "qa_state_type_implicit_model_repository"


class VariableStateTypeTest(CoverageChecks, VariableCoverageChecks, unittest.TestCase):
    """Every state dtype, shape [-1], batched and not, no initial state."""

    REPOSITORY = "qa_variable_state_type_implicit_model_repository"


class StateTypeZeroStateTest(CoverageChecks, unittest.TestCase):
    """Every state dtype with a zero initial state."""

    REPOSITORY = "qa_state_type_initial_state_implicit_model_repository"


class StateTypeFileStateTest(CoverageChecks, unittest.TestCase):
    """Every state dtype with a file initial state: 100 (boolean: true)."""

    REPOSITORY = "qa_state_type_initial_state_file_implicit_model_repository"


class WiderStateTest(CoverageChecks, unittest.TestCase):
    """int32 INPUT with an int64 state, float16 INPUT with a float32 state: OUTPUT in the state's dtype."""

    REPOSITORY = "qa_wider_state_implicit_model_repository"


class StateShapeTest(CoverageChecks, unittest.TestCase):
    """State dims [2] (sum and step count: 101, 203, 306, 410) and [] (scalar, catalogue entry 3901)."""

    REPOSITORY = "qa_state_shape_implicit_model_repository"


class SameBufferTest(CoverageChecks, unittest.TestCase):
    """use_same_buffer_for_input_output: true, float32 and int32, shape [1]."""

    REPOSITORY = "qa_same_buffer_implicit_model_repository"


class DynaFamiliesTest(RepositoryChecks, unittest.TestCase):
    """Oldest-strategy int32 models of the families upstream makes none for (savedmodel, python, libtorch)."""

    REPOSITORY = "qa_dyna_sequence_families_implicit_model_repository"


def _as_predicted(model, sent, answers, predicted):
    """Whether a scalar-state model's answers are the prediction of SCALAR_STATE_BUG.

    An error text: every request refused with it. START_UNINITIALIZED: each
    START answers its value plus whatever the missing state bytes held (left
    open), and every later step adds its value to the previous answer.
    """
    if len(answers) != len(sent):
        return False
    if predicted != exp.START_UNINITIALIZED:
        return all(isinstance(a, str) and predicted in a for a in answers)
    like = client.output_tensor(model, 0)
    if not all(isinstance(a, np.ndarray) and a.dtype == like.dtype and a.shape == like.shape
               for a in answers):
        return False
    return all(np.array_equal(answer, previous + client.output_tensor(model, step.value))
               for previous, answer, step in zip(answers[:-1], answers[1:], sent[1:], strict=True)
               if not step.start)


def _shown(answer):
    """An answer as a plain value for a message (arrays as nested lists)."""
    return answer.tolist() if hasattr(answer, "tolist") else answer


class MultiStateChecks(ServedRepository):
    """Checks the models with several state pairs of one repository.

    With NAME_ORDER_BUG (the repository whose output state names sort in
    another order than its input names), a model of a family catalogue
    entry 8586 can show in may instead answer exactly what released
    Triton's pairing by name order gives, computed from the rule
    (`predicted`): that is recorded as the bug present, not a failure. Any
    third answer fails, and a family out of the bug's reach must answer the
    contract.
    """

    NAME_ORDER_BUG = False
    ENTRY = "8586"

    def expected(self, model, table):
        """The literal outputs of a table for the model's pair count."""
        return exp.MULTI_STATE_EXPECTED[model.initial_state][model.state_pairs][table]

    def predicted(self, model, table):
        """What released Triton answers to a table's requests (pairing by name order)."""
        return predictions.name_order(built_root() / self.REPOSITORY / model.name,
                                      model.family, table)

    def assert_multi(self, model, outputs, table):
        """The contract's outputs, or exactly the bug's prediction (recorded either way)."""
        shows = self.NAME_ORDER_BUG and model.family in report.entries()[self.ENTRY].families
        name = type(self).__name__
        if shows and self.values_equal(model, outputs, self.predicted(model, table)):
            report.observe(self.ENTRY, model, catalogue.PRESENT, test_class=name)
            return
        if shows:
            right = self.values_equal(model, outputs, self.expected(model, table))
            report.observe(self.ENTRY, model, catalogue.FIXED if right else catalogue.WRONG,
                           f"{table}: {[o.tolist() if hasattr(o, 'tolist') else o for o in outputs]}")
        self.assert_values(model, outputs, self.expected(model, table))

    def check_each_model(self, corrid, sequence, table):
        """Send a sequence over HTTP, then gRPC, to every model; compare with a table."""
        for model in self.models:
            for protocol, connection in self.connections.items():
                with self.subTest(model=model.name, protocol=protocol):
                    outputs = client.run_sequence(protocol, connection, model, corrid, sequence)
                    self.assert_multi(model, outputs, table)

    def test_every_model_has_several_pairs(self):
        """Each family's models in the repository: 2 and 3 pairs, batched and not."""
        for name in {m.family for m in self.models}:
            with self.subTest(family=name):
                self.assertEqual({(m.state_pairs, m.batched) for m in self.models
                                  if m.family == name},
                                 {(2, True), (2, False), (3, True), (3, False)})

    def test_worked_example(self):
        """INPUT 1, 2, 3, 4: e.g. 5, 15, 30, 50 (2 pairs) or 1414, 1442, 1484, 1540 (3, file)."""
        self.check_each_model(11, steps(exp.MULTI_WORKED), "worked")

    def test_start_resets_every_pair(self):
        """A second START resets every pair to its initial value."""
        self.check_each_model(12, exp.MULTI_RESTART, "restart")

    def test_parallel_sequences(self):
        """Two sequences batched together keep their pairs' states apart."""
        for model in self.batched_models():
            with self.subTest(model=model.name):
                sequences = {c: (steps(v), 1) for c, v in exp.MULTI_PARALLEL.items()}
                results = client.stream_sequences(self.server.grpc_url, model, sequences)
                for corrid in exp.MULTI_PARALLEL:
                    self.assert_multi(model, results[corrid], corrid)

    def test_state_outputs_are_not_outputs(self):
        """Asking for any pair's state output, pair 0 included, is "unexpected inference output"."""
        for model in self.models:
            for k in range(model.state_pairs):
                state = model.state_output_name(k)
                with self.subTest(model=model.name, output=state):
                    self.assert_refused(STATE_OUTPUT.format(state),
                                        "grpc", model, 13, Step(1, True, True),
                                        outputs=(model.output_name, state))


class MultiStateTest(MultiStateChecks, unittest.TestCase):
    """Two and three state pairs, no initial state."""

    REPOSITORY = "qa_multi_state_implicit_model_repository"


class MultiStateFileTest(MultiStateChecks, unittest.TestCase):
    """Two and three state pairs whose file initial states hold 100 * (k + 1)."""

    REPOSITORY = "qa_multi_state_initial_state_file_implicit_model_repository"


class MultiStateOrderTest(MultiStateChecks, unittest.TestCase):
    """Output state names sorting in another order than the inputs: a reproducer of issue 8586."""

    REPOSITORY = "qa_multi_state_order_implicit_model_repository"
    NAME_ORDER_BUG = True


def _served_classes(base=ServedRepository):
    """Every subclass of `base`, at any depth."""
    for cls in base.__subclasses__():
        yield cls
        yield from _served_classes(cls)


class CoverageTest(unittest.TestCase):
    """Every model of a tested family is exercised, every family is accounted for."""

    @classmethod
    def setUpClass(cls):
        manifest = json.loads((built_root() / "manifest.json").read_text())
        cls.entries = manifest["models"]
        cls.setup = e2e_setup()

    def test_report(self):
        """Print which families are tested, which not and why, unknown backend folders."""
        libraries = "".join(f"\nserver library folder: {folder}"
                            for folder in self.setup.installation.library_path)
        sys.stderr.write(f"\nserver: {self.setup.installation.source}{libraries}\n"
                         f"{format_discovery(self.setup.discovery)}\n")
        for repository in sorted(EXPECTED_MODELS):
            if not holds_a_tested_family(repository):
                sys.stderr.write(f"repository {repository}: not served, no model of a tested"
                                 " family in it (tests/expected_models.py)\n")
        for name, reason in self.setup.discovery.not_tested.items():
            with self.subTest(family=name):
                self.skipTest(f"family {name} not tested: {reason}")

    def test_some_family_is_tested(self):
        """A server with no backend for any family of this project verifies nothing: a failure."""
        self.assertTrue(self.setup.discovery.tested,
                        f"no family tested:\n{format_discovery(self.setup.discovery)}")

    def test_required_families_are_tested(self):
        """Families the target requires (E2E_REQUIRED_FAMILIES) must not be NOT TESTED."""
        required = [f for f in os.environ.get(REQUIRED_VAR, "").split(",") if f]
        missing = {f: self.setup.discovery.not_tested.get(f, "not in the repository")
                   for f in required if f not in self.setup.discovery.tested}
        self.assertEqual(missing, {}, f"{REQUIRED_VAR}={','.join(required)}: these families"
                         " were required but not tested")

    def test_built_tree_holds_the_expected_models(self):
        """Every tested family: per repository, exactly tests/expected_models.py's count (0: none)."""
        built = manifest_counts(self.entries)
        self.assertEqual(mismatches(built, self.setup.discovery.tested), [])

    def test_every_tested_repository_has_a_class(self):
        """A repository the table gives models of a tested family needs its own test class."""
        wanted = {repository for repository, _ in expected(self.setup.discovery.tested)}
        tested = {cls.REPOSITORY for cls in _served_classes() if cls.REPOSITORY}
        self.assertEqual(wanted - tested, set())

    def test_every_built_repository_has_a_class(self):
        """Every repository of the manifest has a test class, chosen by its name."""
        built = {entry["repository"] for entry in self.entries}
        tested = {cls.REPOSITORY for cls in _served_classes() if cls.REPOSITORY}
        self.assertEqual(built - tested, set(), "repositories no class of verification/checks.py"
                         " (or catalogue_checks.py) serves")


def suite(loader=unittest.defaultTestLoader):
    """Every check of this module and verification/catalogue_checks.py that has something to run.

    Left out: the classes of repositories with nothing for this server,
    decided by the literal table (tests/expected_models.py) and the
    server's backends, never by the built tree (a repository the table
    gives a model of a tested family is always served, and its class
    asserts the counts); and catalogue checks without their input (no
    family the entry shows in, no invalid-model repository).
    """
    kept = unittest.TestSuite()
    for module in (sys.modules[__name__], catalogue_checks):
        for test in _flatten(loader.loadTestsFromModule(module)):
            repository = getattr(type(test), "REPOSITORY", None)
            if ((repository is None or holds_a_tested_family(repository))
                    and catalogue_checks.applicable(type(test))):
                kept.addTest(test)
    return kept


def _flatten(suite):
    for item in suite:
        if isinstance(item, unittest.TestSuite):
            yield from _flatten(item)
        else:
            yield item
