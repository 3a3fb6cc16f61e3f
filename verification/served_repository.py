"""One real tritonserver per test class, serving one repository's models of the tested families.

`ServedRepository` is a mixin for `unittest.TestCase` classes that name a
repository of the built tree (tests.repo_location.implicit_repo; under
Bazel, IMPLICIT_REPO) in `REPOSITORY`. `e2e_setup` decides once per process
which server runs (verification.installation: the pinned wheel's, or
TRITON_HOME / TRITON_SERVER / TRITON_BACKEND_DIR) and which families it
tests (verification.families.discover; E2E_FAMILIES, comma-separated, narrows
them). `setUpClass` starts the server on a private copy of the repository
(KIND_GPU served as KIND_CPU without a GPU, said on stderr), loads every
model of the tested families the manifest lists there (LOAD_THREADS loads at
once) and opens an HTTP and a gRPC connection. How many models of each tested family the repository
must hold is the literal table of tests/expected_models.py, asserted per
family by `test_holds_the_expected_models` (a zero there is asserted too);
`holds_a_tested_family` says from that table alone whether a repository
has anything for this server to test. Every model tried is reported
(verification.report.SERVED), the ones that did not load as such
(report.NOT_LOADED). The class cleanup stops the server, prints the server
log's tail when a test of the class failed, and fails the class when the
server did not exit with status 0 or its log holds an error line
(verification.server_log). It also holds the assertions every e2e check
shares (an answer must have OUTPUT's dtype, shape and values), and
`test_served_config`: each loaded model's configuration as the
server serves it over HTTP, compared field by field with the config.pbtxt
generated for it (verification/served_config.py), which also tells how the
server renders initial-state dims (catalogue entry config-initial-state-dims).
"""

import atexit
import concurrent.futures
import dataclasses
import functools
import json
import os
import pathlib
import shutil
import sys
import tempfile

import numpy as np
from tritonclient.utils import InferenceServerException

from generators.model_config import parse_config
from tests.expected_models import in_repository
from tests.repo_location import implicit_repo
from verification import catalogue, real_backends, report, served_config
from verification import sequence_client as client
from verification.families import FAMILIES, Discovery, discover
from verification.installation import Installation, from_environment, has_gpu
from verification.server_log import check_server_log
from verification.triton_server import TritonServer, pinned_paths, python_backend_directory

FAMILIES_VAR = "E2E_FAMILIES"
CONFIG_DIMS = "config-initial-state-dims"
# Model loads sent to a server at once.
LOAD_THREADS = 4


@dataclasses.dataclass(frozen=True)
class E2ESetup:
    """The server every class of this process runs, and what it tests."""

    installation: Installation
    discovery: Discovery


def _scratch_folder():
    scratch = pathlib.Path(tempfile.mkdtemp(prefix="tritonserver_backends."))
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    return scratch / "backends"


def choose_installation():
    """The installation the environment names, with its backend folder laid out if needed.

    `--config=real_backends` (verification.real_backends) lays out Triton's CPU
    backends beside the wheel's python backend; otherwise TRITON_HOME /
    TRITON_SERVER / TRITON_BACKEND_DIR, or the wheel's python backend alone.
    The pinned server gets the framework libraries its folder's tensorflow
    and pytorch backends need.
    """
    if real_backends.requested():
        installation = real_backends.installation(_scratch_folder())
    else:
        installation = from_environment()
    if installation.backend_dir is None:  # the pinned wheel's python backend, assembled once
        folder = python_backend_directory(_scratch_folder())
        installation = dataclasses.replace(installation, backend_dir=folder)
    if pinned_paths(installation) is not None:
        installation = dataclasses.replace(installation, library_path=tuple(
            real_backends.framework_library_dirs(installation.backend_dir)))
    return installation


@functools.cache
def e2e_setup():
    """Read the installation and the wanted families from the environment, once."""
    installation = choose_installation()
    wanted = [f for f in os.environ.get(FAMILIES_VAR, "").split(",") if f] or None
    unknown = sorted(set(wanted or ()) - set(FAMILIES))
    if unknown:
        raise ValueError(f"{FAMILIES_VAR} names unknown families {unknown}; known: {sorted(FAMILIES)}")
    found = discover(installation.backend_dir, has_gpu(), wanted=wanted)
    return E2ESetup(installation, found)


def repository_models(root, repository):
    """ModelInfo of every model the manifest lists in a repository."""
    manifest = json.loads((root / "manifest.json").read_text())
    return [client.ModelInfo.from_manifest(entry) for entry in manifest["models"]
            if entry["repository"] == repository]


def built_root():
    """The built tree (generated with the CLI for the tested families when not under Bazel)."""
    return implicit_repo(backends=tuple(e2e_setup().discovery.tested) or ("python",))


def holds_a_tested_family(repository):
    """Whether tests/expected_models.py gives `repository` a model of a family this server tests."""
    return bool(in_repository(repository, e2e_setup().discovery.tested))


def load_models(url, names, threads=LOAD_THREADS):
    """Load models on the server at `url`, `threads` at a time; name -> why one did not load.

    Each thread has its own HTTP connection; Triton loads the models of
    concurrent requests side by side (python stubs start, TensorFlow and
    torch models load in parallel).
    """
    failures = {}

    def load(chunk):
        connection = client.connect("http", url)
        try:
            for name in chunk:
                try:
                    connection.load_model(name)
                except InferenceServerException as err:
                    failures[name] = err.message()
        finally:
            connection.close()

    with concurrent.futures.ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(load, [names[i::threads] for i in range(threads)]))
    return {name: failures[name] for name in names if name in failures}


def _problems(result):
    return 0 if result is None else len(result.failures) + len(result.errors)


class ServedRepository:
    """A server on REPOSITORY with its tested families' models loaded; mixed into a TestCase."""

    REPOSITORY = ""
    failed = False

    @classmethod
    def setUpClass(cls):
        """Start a server on the repository and load its models of the tested families."""
        setup = e2e_setup()
        root = built_root()
        cls.models = [m for m in repository_models(root, cls.REPOSITORY)
                      if m.family in setup.discovery.tested]
        # Reported before anything can fail, so a server that never starts
        # still shows these models, unchecked, in the family table.
        report.SERVED[cls.__name__] = list(cls.models)
        cls.server = TritonServer(root / cls.REPOSITORY, label=cls.__name__,
                                  installation=setup.installation,
                                  cpu_only=not setup.discovery.gpu)
        cls.addClassCleanup(cls._stop_server)
        cls.server.start()
        if cls.server.cpu_rewritten:
            sys.stderr.write(f"\n{cls.__name__}: no GPU, so KIND_GPU instance groups are served as"
                             f" KIND_CPU: {cls.server.cpu_rewritten} config(s) of {cls.REPOSITORY}"
                             " rewritten in the server's private copy\n")
        cls.load_failures = load_models(cls.server.http_url, [m.name for m in cls.models])
        for name, message in cls.load_failures.items():
            report.NOT_LOADED[(cls.__name__, name)] = message
        cls.models = [m for m in cls.models if m.name not in cls.load_failures]
        cls.connections = {p: client.connect(p, url) for p, url in cls._urls().items()}

    @classmethod
    def _urls(cls):
        return {"http": cls.server.http_url, "grpc": cls.server.grpc_url}

    @classmethod
    def _stop_server(cls):
        """Stop the server; fail on an exit status other than 0 or an error line in its log.

        A crash while shutting down (a signal, a non-zero status) or a hang
        that ends in SIGKILL is a failure of the class like any other.
        """
        for connection in getattr(cls, "connections", {}).values():
            connection.close()
        status = cls.server.stop()
        clean = status in (0, None)  # None: the server never started (set-up failed already)
        if cls.failed or not clean:
            sys.stderr.write(f"\n{cls.__name__}: tritonserver exited with {status}; log"
                             f" {cls.server.log_path} ends:\n{cls.server.log_tail()}\n")
        if cls.server.log_path.exists():  # absent only when the server never ran
            check_server_log(cls.server.log_path)
        if not clean:
            raise AssertionError(
                f"{cls.__name__}: tritonserver exited with status {status} when stopped"
                f" (SIGTERM, then SIGKILL after a hang); a clean shutdown exits 0")

    def run(self, result=None):
        """Run the test and remember whether it failed (to print the log)."""
        before = _problems(result)
        result = super().run(result)
        if _problems(result) > before:
            type(self).failed = True
        return result

    def test_holds_the_expected_models(self):
        """Each tested family has as many models here as tests/expected_models.py gives (0: none)."""
        tested = e2e_setup().discovery.tested
        want = in_repository(self.REPOSITORY, tested)
        held = report.SERVED[type(self).__name__]
        for name in sorted(set(want) | {m.family for m in held}):
            with self.subTest(family=name):
                self.assertEqual(sum(m.family == name for m in held), want.get(name, 0),
                                 f"{self.REPOSITORY}: {name} models built vs expected")

    def test_every_model_loads(self):
        """Every model of a tested family in the repository loads."""
        for name, message in self.load_failures.items():
            with self.subTest(model=name):
                self.fail(f"{name} did not load: {message}")

    def generated_config(self, model):
        """The config.pbtxt generated for a model, as this server was given it (KIND_CPU without a GPU)."""
        config = parse_config((built_root() / self.REPOSITORY / model.name / "config.pbtxt").read_text())
        if self.server.cpu_only:
            for group in config.instance_group:
                if group.kind == group.KIND_GPU:
                    group.kind = group.KIND_CPU
        return config

    def test_served_config(self):
        """GET /v2/models/<model>/config equals the generated config after Triton's additions.

        The one difference allowed beyond the additions is the catalogued
        rendering of initial-state dims as strings, recorded per model for
        the catalogue's verdict.
        """
        report.CHECKS_RUN.add("served_config")
        for model in self.models:
            with self.subTest(model=model.name):
                served = self.connections["http"].get_model_config(model.name)
                differences, rendering = served_config.compare(self.generated_config(model), served)
                dims = [d for d in differences if served_config.INITIAL_DIMS.match(d.path)]
                if dims:  # initial-state dims neither as numbers nor as the catalogued strings
                    report.observe(CONFIG_DIMS, model, catalogue.WRONG, str(dims[0]))
                elif rendering is not None:
                    report.observe(CONFIG_DIMS, model, catalogue.PRESENT
                                   if rendering == served_config.DIMS_AS_STRINGS else catalogue.FIXED)
                self.assertEqual([str(d) for d in differences], [],
                                 f"{model.name}: served config differs from the generated one")

    def batched_models(self):
        """The batched models of the repository (parallel tests need slots)."""
        models = [m for m in self.models if m.batched]
        self.assertTrue(models, f"{self.REPOSITORY} has no batched model of a tested family")
        return models

    @staticmethod
    def values_equal(model, outputs, expected, width=1):
        """Whether output i is expected[i] (in every element, or a tuple per element), typed as OUTPUT."""
        return len(outputs) == len(expected) and all(
            _same(output, client.output_tensor(model, v, width))
            for output, v in zip(outputs, expected, strict=True))

    def assert_values(self, model, outputs, expected, width=1):
        """Output i must be expected[i] (in every element, or a tuple per element), typed as OUTPUT."""
        self.assertEqual(len(outputs), len(expected))
        for index, (output, value) in enumerate(zip(outputs, expected, strict=True)):
            want = client.output_tensor(model, value, width)
            right = _same(output, want)
            if not right:
                report.WRONG_ANSWERS[model.name] += 1
            self.assertTrue(right, f"{model.name} step {index}: got {output!r}, want {want!r}"
                                   f" ({want.dtype})")

    def assert_refused(self, message, protocol, model, corrid, step, **options):
        """The request must fail with Triton's message, leaving the server up."""
        connection = self.connections[protocol]
        with self.assertRaises(InferenceServerException) as caught:
            client.infer(protocol, connection, model, corrid, step, **options)
        self.assertIn(message, caught.exception.message())


def _same(output, want):
    """Whether an answer is the array `want`: same dtype, shape and elements."""
    return isinstance(output, np.ndarray) and output.dtype == want.dtype and np.array_equal(output, want)
