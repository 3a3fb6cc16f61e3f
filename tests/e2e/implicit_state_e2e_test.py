"""End-to-end: the generated python models on a real tritonserver.

For each repository of the built tree (tests.repo_location.implicit_repo;
under Bazel, IMPLICIT_REPO) that holds python models, one test class starts
the tritonserver bundled with the pinned nvidia-pytriton wheel on that
repository, loads every python model in it, and drives them with tritonclient
over HTTP and gRPC as Triton's QA clients do (reference section 7): single
sequences, START mid-sequence, parallel sequences on batched models,
ragged variable-shape sequences, zero and file initial states (a string
state starts empty whatever its file holds: Triton core zeroes it), strings
as decimal text, the errors Triton itself returns, and a load run; models with
several state pairs get the issue's worked example, a mid-sequence restart
and parallel sequences. The stock python backend never advances implicit
state, so these results prove that the model keeps each sequence's state
(each pair's) itself. Expected values are literals
from CONTRACT.md section 3 and the upstream tests, not computed by the code
under test. Server logs go to $TEST_UNDECLARED_OUTPUTS_DIR when set; a
failing class prints its server's log tail, and any error line in a log
fails its class (tests.e2e.server_log).
"""

import json
import signal
import sys
import unittest

from tests.e2e import sequence_client as client
from tests.e2e.sequence_client import Step, steps
from tests.e2e.served_repository import ServedRepository
from tests.repo_location import implicit_repo

# (values, outputs) per correlation id; outputs are the running sums.
SIMPLE = ((1, 2, 3, 4, 5, 6, 7, 8, 9), (1, 3, 6, 10, 15, 21, 28, 36, 45))
LENGTH1 = ((42,), (42,))
NO_END = (  # START again on the third request resets the sum: 42 + 9 = 51
    [Step(1, start=True), Step(2), Step(42, start=True), Step(9, end=True)], (1, 3, 42, 51))
HALF_BATCH = {987: ((1, 2, 3, 4), (1, 3, 6, 10)), 988: ((0, 9, 5, 13), (0, 9, 14, 27))}
FULL_BATCH = {
    1001: ((1, 2, 3), (1, 3, 6)),
    1002: ((11, 12, 13), (11, 23, 36)),
    1003: ((111, 112, 113), (111, 223, 336)),
    1004: ((1111, 1112, 1113), (1111, 2223, 3336)),
}
SKIP_BATCH = {
    1001: ((1, 3), (1, 4)),
    1002: ((11, 12, 13, 14), (11, 23, 36, 50)),
    1003: ((111, 113), (111, 224)),
    1004: ((1111, 1112, 1113, 1114), (1111, 2223, 3336, 4450)),
}
RAGGED_WIDTHS = {1001: 2, 1002: 2, 1003: 1, 1004: 3}
# What Triton answers for requests the sequence batcher refuses.
NO_CORRID = "must specify a non-zero or non-empty correlation ID"
NO_START = "must specify the START flag on the first request of the sequence"
BATCH_2 = "must specify batch-size 1 due to requirements of sequence batcher"
STATE_OUTPUT = "unexpected inference output 'OUTPUT_STATE'"
NOT_DECIMAL = "is not a decimal integer"
LOAD_SEQUENCES = 64
LOAD_STEPS = 50


class RepositoryChecks(ServedRepository):
    """Checks every python model of one repository; mixed into a TestCase."""

    # Numeric initial state value: 100 for the file-initialised repositories.
    # String states always start empty (Triton core zeroes them), i.e. 0.
    OFFSET = 0

    def assert_outputs(self, model, outputs, expected, width=1):
        """Each output must hold expected + the initial value in every element."""
        offset = 0 if model.is_string else self.OFFSET
        self.assert_values(model, outputs, [value + offset for value in expected], width)

    def check_sequence(self, corrid, sequence, expected, width=1):
        """Send a sequence over HTTP, then gRPC, to every model."""
        for model in self.models:
            for protocol, connection in self.connections.items():
                with self.subTest(model=model.name, protocol=protocol):
                    outputs = client.run_sequence(
                        protocol, connection, model, corrid, sequence, width)
                    self.assert_outputs(model, outputs, expected, width)

    def check_parallel(self, table, widths=None):
        """Run a table's sequences in parallel gRPC streams on each batched model."""
        widths = widths or {}
        for model in self.batched_models():
            with self.subTest(model=model.name):
                sequences = {c: (steps(v), widths.get(c, 1)) for c, (v, _) in table.items()}
                results = client.stream_sequences(self.server.grpc_url, model, sequences)
                for corrid, (_, expected) in table.items():
                    self.assert_outputs(model, results[corrid], expected, widths.get(corrid, 1))

    def test_simple_sequence(self):
        """Values 1..9 in one sequence: the running sum ends at 45."""
        self.check_sequence(5, steps(SIMPLE[0]), SIMPLE[1])

    def test_length1_sequence(self):
        """A START+END sequence of one request returns its input."""
        self.check_sequence(99, steps(LENGTH1[0]), LENGTH1[1])

    def test_no_sequence_end(self):
        """START in the middle of a sequence resets its state."""
        self.check_sequence(4566, NO_END[0], NO_END[1])

    def test_half_batch(self):
        """Two parallel sequences in an 8-slot batch."""
        self.check_parallel(HALF_BATCH)

    def test_full_batch(self):
        """Four parallel sequences of equal length."""
        self.check_parallel(FULL_BATCH)

    def test_skip_batch(self):
        """Four parallel sequences of different lengths (slots go idle)."""
        self.check_parallel(SKIP_BATCH)

    def test_triton_errors(self):
        """Triton's own refusals come back cleanly and the server survives them."""
        for model in self.models:
            for protocol in self.connections:
                with self.subTest(model=model.name, protocol=protocol):
                    self.assert_refused(NO_CORRID, protocol, model, 0, Step(1, start=True))
                    self.assert_refused(NO_START, protocol, model, 37469245, Step(1))
                    self.assert_refused(STATE_OUTPUT, protocol, model, 1,
                                        Step(1, True, True), outputs=("OUTPUT", "OUTPUT_STATE"))
                    if model.batched:
                        self.assert_refused(BATCH_2, protocol, model, 27,
                                            Step(1, True, True), batch=2)
        self.assertTrue(self.server.is_ready())
        self.check_sequence(5, steps(SIMPLE[0]), SIMPLE[1])

    def test_request_after_end_needs_start(self):
        """A request after END is a new sequence and must carry START."""
        for model in self.models:
            for protocol, connection in self.connections.items():
                with self.subTest(model=model.name, protocol=protocol):
                    outputs = client.run_sequence(protocol, connection, model, 3, steps([1, 2, 3]))
                    self.assert_outputs(model, outputs, (1, 3, 6))
                    self.assert_refused(NO_START, protocol, model, 3, Step(55))

    def test_model_error_keeps_sequence(self):
        """A string the model cannot parse fails that request only."""
        for model in (m for m in self.models if m.is_string):
            for protocol, connection in self.connections.items():
                with self.subTest(model=model.name, protocol=protocol):
                    first = client.infer(protocol, connection, model, 77, Step(1, start=True))
                    self.assert_refused(NOT_DECIMAL, protocol, model, 77, Step("x1"))
                    last = client.infer(protocol, connection, model, 77, Step(2, end=True))
                    self.assert_outputs(model, [first, last], (1, 3))


class VariableShapeChecks:
    """Checks only variable-shape repositories can run; mixed in after RepositoryChecks."""

    def test_wide_sequence(self):
        """Width-4 data: the width-1 initial state broadcasts, elements add up."""
        self.check_sequence(6, steps(SIMPLE[0]), SIMPLE[1], width=4)

    def test_ragged_batch(self):
        """Parallel sequences of widths 2, 2, 1 and 3 on variable-shape models."""
        self.check_parallel(FULL_BATCH, RAGGED_WIDTHS)


class LoadChecks:
    """The load run; mixed into one repository's test class only."""

    def test_load(self):
        """64 concurrent sequences x 50 steps across the batched models."""
        models = self.batched_models()
        names = [model.name for model in models]
        before = client.inference_counts(self.connections["http"], names)
        report = client.load_run(self.server.grpc_url, models, LOAD_SEQUENCES, LOAD_STEPS)
        after = client.inference_counts(self.connections["http"], names)
        inferences, executions = (a - b for a, b in zip(after, before, strict=True))
        sys.stderr.write(
            f"\nload: {LOAD_SEQUENCES} sequences x {LOAD_STEPS} steps on {len(models)} models:"
            f" {report.requests} requests in {report.seconds:.2f}s ="
            f" {report.requests_per_second:.0f} requests/s, {len(report.wrong)} wrong,"
            f" {inferences / max(executions, 1):.2f} requests per execution\n")
        self.assertEqual(report.wrong, [])
        self.assertEqual(report.requests, LOAD_SEQUENCES * LOAD_STEPS)
        self.assertTrue(self.server.is_ready())


class FixedShapeTest(RepositoryChecks, LoadChecks, unittest.TestCase):
    """Shape [1], batch 8 and nobatch, no initial state; also the load run."""

    REPOSITORY = "qa_sequence_implicit_model_repository"


class FixedShapeZeroStateTest(RepositoryChecks, unittest.TestCase):
    """Shape [1] with a zero initial state."""

    REPOSITORY = "qa_sequence_initial_state_implicit_model_repository"


class FixedShapeFileStateTest(RepositoryChecks, unittest.TestCase):
    """Shape [1] with a file initial state of 100: every output is +100 (strings: +0)."""

    REPOSITORY = "qa_sequence_initial_state_file_implicit_model_repository"
    OFFSET = 100


class VariableShapeTest(RepositoryChecks, VariableShapeChecks, unittest.TestCase):
    """Shape [-1], batch 8, no initial state."""

    REPOSITORY = "qa_variable_sequence_implicit_model_repository"


class VariableShapeZeroStateTest(RepositoryChecks, VariableShapeChecks, unittest.TestCase):
    """Shape [-1] with a zero initial state."""

    REPOSITORY = "qa_variable_sequence_initial_state_implicit_model_repository"


class VariableShapeFileStateTest(RepositoryChecks, VariableShapeChecks, unittest.TestCase):
    """Shape [-1] with a file initial state of 100 (width 1, broadcast; strings: empty)."""

    REPOSITORY = "qa_variable_sequence_initial_state_file_implicit_model_repository"
    OFFSET = 100


# Multi-state repositories (issue "Several implicit states per model"): OUTPUT
# is the sum over pairs k of (k + 1) * running sum + initial_k (file: 100 * (k + 1)),
# so per pair count (2 or 3): values 1, 2, 3, 4 from START ...
MULTI_WORKED = (1, 2, 3, 4)
# ... and 1, 2, then 42 with START again, then 9 (running sums 1, 3, 42, 51) ...
MULTI_RESTART = [Step(1, start=True), Step(2), Step(42, start=True), Step(9, end=True)]
# ... and two parallel sequences (running sums 1, 3, 6, 10 and 10, 30, 60, 100).
MULTI_PARALLEL = {2001: (1, 2, 3, 4), 2002: (10, 20, 30, 40)}
MULTI_STATE_EXPECTED = {  # repository -> pair count -> table -> outputs
    "qa_multi_state_implicit_model_repository": {
        2: {"worked": (3, 9, 18, 30), "restart": (3, 9, 126, 153),
            2001: (3, 9, 18, 30), 2002: (30, 90, 180, 300)},
        3: {"worked": (6, 18, 36, 60), "restart": (6, 18, 252, 306),
            2001: (6, 18, 36, 60), 2002: (60, 180, 360, 600)},
    },
    "qa_multi_state_initial_state_file_implicit_model_repository": {
        2: {"worked": (303, 309, 318, 330), "restart": (303, 309, 426, 453),
            2001: (303, 309, 318, 330), 2002: (330, 390, 480, 600)},
        3: {"worked": (606, 618, 636, 660), "restart": (606, 618, 852, 906),
            2001: (606, 618, 636, 660), 2002: (660, 780, 960, 1200)},
    },
}


class MultiStateChecks(ServedRepository):
    """Checks the python models with several state pairs of one repository."""

    def expected(self, model, table):
        """The literal outputs of a table for the model's pair count."""
        return MULTI_STATE_EXPECTED[self.REPOSITORY][model.state_pairs][table]

    def check_each_model(self, corrid, sequence, table):
        """Send a sequence over HTTP, then gRPC, to every model; compare with a table."""
        for model in self.models:
            for protocol, connection in self.connections.items():
                with self.subTest(model=model.name, protocol=protocol):
                    outputs = client.run_sequence(protocol, connection, model, corrid, sequence)
                    self.assert_values(model, outputs, self.expected(model, table))

    def test_every_model_has_several_pairs(self):
        """The repository holds 2- and 3-pair models, batched and not."""
        self.assertEqual({(m.state_pairs, m.batched) for m in self.models},
                         {(2, True), (2, False), (3, True), (3, False)})

    def test_worked_example(self):
        """INPUT 1, 2, 3, 4: e.g. 3, 9, 18, 30 (2 pairs) or 606, 618, 636, 660 (3, file)."""
        self.check_each_model(11, steps(MULTI_WORKED), "worked")

    def test_start_resets_every_pair(self):
        """A second START resets every pair to its initial value."""
        self.check_each_model(12, MULTI_RESTART, "restart")

    def test_parallel_sequences(self):
        """Two sequences batched together keep their pairs' states apart."""
        for model in self.batched_models():
            with self.subTest(model=model.name):
                sequences = {c: (steps(v), 1) for c, v in MULTI_PARALLEL.items()}
                results = client.stream_sequences(self.server.grpc_url, model, sequences)
                for corrid in MULTI_PARALLEL:
                    self.assert_values(model, results[corrid], self.expected(model, corrid))

    def test_state_outputs_are_not_outputs(self):
        """Asking for a state output is Triton's "unexpected inference output" error."""
        for model in self.models:
            for k in range(1, model.state_pairs):
                with self.subTest(model=model.name, output=f"OUTPUT_STATE_{k}"):
                    self.assert_refused(f"unexpected inference output 'OUTPUT_STATE_{k}'",
                                        "grpc", model, 13, Step(1, True, True),
                                        outputs=("OUTPUT", f"OUTPUT_STATE_{k}"))


class MultiStateTest(MultiStateChecks, unittest.TestCase):
    """Two and three state pairs, no initial state."""

    REPOSITORY = "qa_multi_state_implicit_model_repository"


class MultiStateFileTest(MultiStateChecks, unittest.TestCase):
    """Two and three state pairs whose file initial states hold 100 * (k + 1)."""

    REPOSITORY = "qa_multi_state_initial_state_file_implicit_model_repository"


def _served_classes(base=ServedRepository):
    """Every subclass of `base`, at any depth."""
    for cls in base.__subclasses__():
        yield cls
        yield from _served_classes(cls)


class CoverageTest(unittest.TestCase):
    """Every python model of the built tree is exercised by a class above."""

    def test_every_python_repository_is_tested(self):
        """A new repository with python models needs its own test class."""
        manifest = json.loads((implicit_repo(backends=("python",)) / "manifest.json").read_text())
        built = {e["repository"] for e in manifest["models"]
                 if e["variant"]["backend"] == "python"}
        tested = {cls.REPOSITORY for cls in _served_classes() if cls.REPOSITORY}
        self.assertEqual(built - tested, set())


def _interrupt(signum, frame):
    """Turn SIGTERM (a Bazel timeout) into KeyboardInterrupt, so servers stop."""
    del signum, frame
    raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _interrupt)
    unittest.main()
