"""One real tritonserver per test class, serving the python models of one repository.

`ServedRepository` is a mixin for `unittest.TestCase` classes that name a
repository of the built tree (tests.repo_location.implicit_repo; under
Bazel, IMPLICIT_REPO) in `REPOSITORY`: `setUpClass` starts the server on
it, loads every python model the manifest lists there and opens an HTTP
and a gRPC connection; the class cleanup stops the server, prints the server
log's tail when a test of the class failed, and fails the class when the log
holds an error line (tests.e2e.server_log). It also holds the assertions
every e2e check shares.
"""

import json
import sys

import numpy as np
from tritonclient.utils import InferenceServerException

from tests.e2e import sequence_client as client
from tests.e2e.server_log import check_server_log
from tests.e2e.triton_server import TritonServer
from tests.repo_location import implicit_repo


def python_models(root, repository):
    """ModelInfo of every python model the manifest lists in a repository."""
    manifest = json.loads((root / "manifest.json").read_text())
    return [
        client.ModelInfo.from_manifest(entry) for entry in manifest["models"]
        if entry["repository"] == repository and entry["variant"]["backend"] == "python"
    ]


def _problems(result):
    return 0 if result is None else len(result.failures) + len(result.errors)


class ServedRepository:
    """A server on REPOSITORY with its python models loaded; mixed into a TestCase."""

    REPOSITORY = ""
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
        if cls.server.log_path.exists():  # absent only when the server never ran
            check_server_log(cls.server.log_path)

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

    def assert_values(self, model, outputs, expected, width=1):
        """Output i must hold expected[i] in every element, in the model's I/O type."""
        self.assertEqual(len(outputs), len(expected))
        for index, (output, value) in enumerate(zip(outputs, expected, strict=True)):
            want = client.tensor(model, value, width)
            self.assertTrue(
                isinstance(output, np.ndarray) and np.array_equal(output, want),
                f"{model.name} step {index}: got {output!r}, want {want!r}")

    def assert_refused(self, message, protocol, model, corrid, step, **options):
        """The request must fail with Triton's message, leaving the server up."""
        connection = self.connections[protocol]
        with self.assertRaises(InferenceServerException) as caught:
            client.infer(protocol, connection, model, corrid, step, **options)
        self.assertIn(message, caught.exception.message())
