"""End-to-end: the generated python models on a real tritonserver.

For each repository of the built tree (tests.repo_location.implicit_repo;
under Bazel, IMPLICIT_REPO) that holds python models, one test class starts
the tritonserver bundled with the pinned nvidia-pytriton wheel on that
repository, loads every python model in it, and drives them with tritonclient
over HTTP and gRPC as Triton's QA clients do (reference section 7): single
sequences, START mid-sequence, parallel sequences on batched models,
ragged variable-shape sequences, zero and file initial states, strings as
decimal text, the errors Triton itself returns, and a load run. The stock
python backend never advances implicit state, so these results prove that
the model keeps each sequence's state itself. Expected values are literals
from CONTRACT.md section 3 and the upstream tests, not computed by the code
under test. Server logs go to $TEST_UNDECLARED_OUTPUTS_DIR when set; a
failing class prints its server's log tail.
"""

import json
import signal
import sys
import unittest

import numpy as np
from tritonclient.utils import InferenceServerException

from tests.e2e import sequence_client as client
from tests.e2e.sequence_client import Step, steps
from tests.e2e.triton_server import TritonServer
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


def python_models(root, repository):
    """ModelInfo of every python model the manifest lists in a repository."""
    manifest = json.loads((root / "manifest.json").read_text())
    return [
        client.ModelInfo.from_manifest(entry) for entry in manifest["models"]
        if entry["repository"] == repository and entry["variant"]["backend"] == "python"
    ]


def _problems(result):
    return 0 if result is None else len(result.failures) + len(result.errors)


class RepositoryChecks:
    """Checks every python model of one repository; mixed into a TestCase."""

    REPOSITORY = ""
    OFFSET = 0  # initial state value: 100 for the file-initialised repositories
    VARIABLE = False
    LOAD = False
    failed = False

    @classmethod
    def setUpClass(cls):
        """Start a server on the repository and load its python models."""
        root = implicit_repo(backends=("python",))
        cls.models = python_models(root, cls.REPOSITORY)
        if not cls.models:
            raise AssertionError(
                f"manifest lists no python models in {cls.REPOSITORY}; configs/matrix.json"
                " must list 'python' in that repository's backends")
        cls.server = TritonServer(root / cls.REPOSITORY, label=cls.__name__)
        cls.addClassCleanup(cls._stop_server)
        cls.server.start()
        loader = client.connect("http", cls.server.http_url)
        for model in cls.models:
            loader.load_model(model.name)
        loader.close()
        cls.connections = {p: client.connect(p, url) for p, url in cls._urls().items()}

    @classmethod
    def _urls(cls):
        return {"http": cls.server.http_url, "grpc": cls.server.grpc_url}

    @classmethod
    def _stop_server(cls):
        for connection in getattr(cls, "connections", {}).values():
            connection.close()
        cls.server.stop()
        if cls.failed:
            sys.stderr.write(f"\n{cls.__name__} failed; tritonserver log"
                             f" {cls.server.log_path} ends:\n{cls.server.log_tail()}\n")

    def run(self, result=None):
        """Run the test and remember whether it failed (to print the log)."""
        before = _problems(result)
        result = super().run(result)
        if _problems(result) > before:
            type(self).failed = True
        return result

    def batched_models(self):
        """The batched models of the repository (parallel tests need slots)."""
        models = [m for m in self.models if m.batched]
        self.assertTrue(models, f"{self.REPOSITORY} has no batched python model")
        return models

    def assert_outputs(self, model, outputs, expected, width=1):
        """Each output must hold expected + OFFSET in every element."""
        self.assertEqual(len(outputs), len(expected))
        for index, (output, value) in enumerate(zip(outputs, expected, strict=True)):
            want = client.tensor(model, value + self.OFFSET, width)
            self.assertTrue(
                isinstance(output, np.ndarray) and np.array_equal(output, want),
                f"{model.name} step {index}: got {output!r}, want {want!r}")

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

    def assert_refused(self, message, protocol, model, corrid, step, **options):
        """The request must fail with Triton's message, leaving the server up."""
        connection = self.connections[protocol]
        with self.assertRaises(InferenceServerException) as caught:
            client.infer(protocol, connection, model, corrid, step, **options)
        self.assertIn(message, caught.exception.message())

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

    def test_wide_sequence(self):
        """Width-4 data: the width-1 initial state broadcasts, elements add up."""
        if not self.VARIABLE:
            self.skipTest("fixed-shape repository")
        self.check_sequence(6, steps(SIMPLE[0]), SIMPLE[1], width=4)

    def test_ragged_batch(self):
        """Parallel sequences of widths 2, 2, 1 and 3 on variable-shape models."""
        if not self.VARIABLE:
            self.skipTest("fixed-shape repository")
        self.check_parallel(FULL_BATCH, RAGGED_WIDTHS)

    def test_load(self):
        """64 concurrent sequences x 50 steps across the batched models."""
        if not self.LOAD:
            self.skipTest("the load run uses the repository without initial state")
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


class FixedShapeTest(RepositoryChecks, unittest.TestCase):
    """Shape [1], batch 8 and nobatch, no initial state; also the load run."""

    REPOSITORY = "qa_sequence_implicit_model_repository"
    LOAD = True


class FixedShapeZeroStateTest(RepositoryChecks, unittest.TestCase):
    """Shape [1] with a zero initial state."""

    REPOSITORY = "qa_sequence_initial_state_implicit_model_repository"


class FixedShapeFileStateTest(RepositoryChecks, unittest.TestCase):
    """Shape [1] with a file initial state of 100: every output is +100."""

    REPOSITORY = "qa_sequence_initial_state_file_implicit_model_repository"
    OFFSET = 100


class VariableShapeTest(RepositoryChecks, unittest.TestCase):
    """Shape [-1], batch 8, no initial state."""

    REPOSITORY = "qa_variable_sequence_implicit_model_repository"
    VARIABLE = True


class VariableShapeZeroStateTest(RepositoryChecks, unittest.TestCase):
    """Shape [-1] with a zero initial state."""

    REPOSITORY = "qa_variable_sequence_initial_state_implicit_model_repository"
    VARIABLE = True


class VariableShapeFileStateTest(RepositoryChecks, unittest.TestCase):
    """Shape [-1] with a file initial state of 100 (width 1, broadcast)."""

    REPOSITORY = "qa_variable_sequence_initial_state_file_implicit_model_repository"
    VARIABLE = True
    OFFSET = 100


class CoverageTest(unittest.TestCase):
    """Every python model of the built tree is exercised by a class above."""

    def test_every_python_repository_is_tested(self):
        """A new repository with python models needs its own test class."""
        manifest = json.loads((implicit_repo(backends=("python",)) / "manifest.json").read_text())
        built = {e["repository"] for e in manifest["models"]
                 if e["variant"]["backend"] == "python"}
        tested = {cls.REPOSITORY for cls in RepositoryChecks.__subclasses__()}
        self.assertEqual(built - tested, set())


def _interrupt(signum, frame):
    """Turn SIGTERM (a Bazel timeout) into KeyboardInterrupt, so servers stop."""
    del signum, frame
    raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _interrupt)
    unittest.main()
