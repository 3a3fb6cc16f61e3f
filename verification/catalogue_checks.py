"""The catalogue's own reproducers on a real tritonserver: one `unittest` class per check.

Each class records what it saw of its catalogue entries
(verification/report.py `observe`): an answer equal to the bug's
prediction, computed from the entry's rule (verification/predictions.py),
is the bug present; the contract's answer is the bug fixed; anything else
fails the check and the entry. verification/checks.py covers entry 8586 on
the order repository and every served model's configuration
(config-initial-state-dims); the classes here:

- `InitialStateDimsTest` (entry 6538): each model of
  qa_initial_state_dims_implicit_model_repository, width-3 sequences, each
  alone on the model (sequences starting together are not predictable);
- `RaggedStateBatchTest` (ragged-state-batch): a copy of each state-handing
  family's variable file-state int32 model whose batcher waits for two
  slots, so that one execution holds a sequence's step 1 (state [1, 2]) and
  another's START (state [1, 1]); two sequences starting together first
  must share one execution by the server's statistics, or the batch could
  not be forced in this run and the entry is not testable in it;
- `InvalidModelsTest` (ort-state-dtype, ort-state-names, refused-load-crash):
  every model of the invalid-model repository (//models:invalid_repo,
  IMPLICIT_INVALID_REPO) of a tested family, loaded alone; Triton must
  refuse it with a message holding the model's `mentions`, and a model that
  loads is a catalogued bug when an entry lists its defect for its family,
  else a failure. A server that dies during a load is the intermittent
  refused-load-crash: recorded, replaced, and the model loaded again.
"""

import json
import os
import pathlib
import queue
import shutil
import sys
import tempfile
import threading
import time
import unittest

import numpy as np
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from generators.model_config import config_text, parse_config
from verification import catalogue, predictions, report
from verification import sequence_client as client
from verification.expectations import FILE_INITIAL_VALUE, Step
from verification.served_repository import ServedRepository, built_root, e2e_setup
from verification.server_log import check_server_log
from verification.triton_server import TritonServer

INVALID_REPO_VAR = report.INVALID_REPO_VAR
CRASHED = "crashed"  # InvalidModelsTest.load: every attempt killed the server
_DIED = object()  # InvalidModelsTest._load_while_alive: the server died during the load
DIMS_REPOSITORY = "qa_initial_state_dims_implicit_model_repository"
# The file initial state of the dims repository's models: 100, 200, 300 (dims [3]).
DIMS_FILE = tuple(FILE_INITIAL_VALUE * (i + 1) for i in range(3))
DIMS_VALUES = (1, 2, 3)
DIMS_SUMS = (1, 3, 6)


def _answer(protocol, connection, model, corrid, step, width):
    """One request's OUTPUT, or the text of the server's error."""
    try:
        return client.infer(protocol, connection, model, corrid, step, width=width)
    except InferenceServerException as err:
        return err.message()


def _judge(entry, model, answers, bug, contract, test_class=None):
    """Record the entry's observation for a model's answers; the outcome.

    Args:
        entry: the catalogue id.
        model: the ModelInfo.
        answers: what the server answered (arrays or error texts).
        bug: the prediction, [(answer, open-element mask or None)].
        contract: the contract's arrays.
        test_class: name of the class, to mark a present bug on the model's line.
    """
    if len(answers) == len(contract) and all(
            predictions.matches(a, c) for a, c in zip(answers, contract, strict=True)):
        outcome = catalogue.FIXED
    elif len(answers) == len(bug) and all(
            predictions.matches(a, p, mask) for a, (p, mask) in zip(answers, bug, strict=True)):
        outcome = catalogue.PRESENT
    else:
        outcome = catalogue.WRONG
    shown = [a.tolist() if isinstance(a, np.ndarray) else a for a in answers]
    report.observe(entry, model, outcome, f"answered {shown}", test_class=test_class)
    return outcome


class InitialStateDimsTest(ServedRepository, unittest.TestCase):
    """Entry 6538: a variable state whose file initial state has dims [3] (100, 200, 300)."""

    REPOSITORY = DIMS_REPOSITORY
    ENTRY = "6538"

    def test_each_sequence_alone(self):
        """Width 3, INPUT 1, 2, 3: the contract's [101, 201, 301], ... or the bug's prediction."""
        report.CHECKS_RUN.add("initial_state_dims")
        rounds = [{1: (np.full([3], v), flags)} for v, flags in
                  zip(DIMS_VALUES, ("start", "", "end"), strict=True)]
        contract = [np.array([DIMS_FILE]) + s for s in DIMS_SUMS]
        for model in self.models:
            model_dir = built_root() / self.REPOSITORY / model.name
            bug = [(a, None) for a in predictions.answers(model_dir, model.family, rounds)[1]]
            for index, (protocol, connection) in enumerate(self.connections.items()):
                with self.subTest(model=model.name, protocol=protocol):
                    client.SEQUENCES_SENT[model.name] += 1
                    answers = [_answer(protocol, connection, model, 6538 + index,
                                       Step(v, i == 0, i == len(DIMS_VALUES) - 1), 3)
                               for i, v in enumerate(DIMS_VALUES)]
                    outcome = _judge(self.ENTRY, model, answers, bug,
                                     [c.astype(np.int32) for c in contract], type(self).__name__)
                    if outcome == catalogue.WRONG:
                        report.WRONG_ANSWERS[model.name] += 1
                    self.assertNotEqual(outcome, catalogue.WRONG,
                                        f"{model.name}: neither the contract's {contract} nor"
                                        f" the bug's {[b for b, _ in bug]}: {answers}")


class OwnServer:
    """A class-wide server on a folder the class prepares; stopped and its log checked at the end.

    `restart_server` replaces a server that died (a catalogued crash); its
    exit status is then already judged, and only its log is checked.
    """

    LABEL = ""
    server = None
    refused = ()
    # Load calls: a crashed server's socket may stay open in its stub processes.
    LOAD_SECONDS = 30
    # How often a pending load looks whether the server process still runs.
    WATCH_SECONDS = 0.2

    @classmethod
    def start_server(cls, repository, index=0):
        """Start the server (explicit model control) on `repository`."""
        setup = e2e_setup()
        label = cls.LABEL + (f"_{index}" if index else "")
        cls.server = TritonServer(repository, label=label, installation=setup.installation,
                                  cpu_only=not setup.discovery.gpu)
        cls.addClassCleanup(cls._stop, cls.server)
        cls.server.start()
        cls.http = httpclient.InferenceServerClient(
            cls.server.http_url, connection_timeout=cls.LOAD_SECONDS,
            network_timeout=cls.LOAD_SECONDS)

    @classmethod
    def _stop(cls, server, crashed=False):
        """Stop `server`; its log must be clean and, unless it crashed already, its exit 0."""
        if server is cls.server:
            cls.http.close()
        status = server.stop()
        if server.log_path.exists():
            check_server_log(server.log_path, cls.refused)
        if status not in (0, None) and not crashed:
            raise AssertionError(f"{cls.__name__}: tritonserver exited with status {status}"
                                 f" when stopped; log {server.log_path}")
        return status

    @classmethod
    def restart_server(cls, repository, index):
        """The server died: record its end, start a fresh one; returns the dead one's status."""
        status = cls._stop(cls.server, crashed=True)
        cls.start_server(repository, index)
        return status


class RaggedStateBatchTest(OwnServer, unittest.TestCase):
    """Entry ragged-state-batch: a step-1 state [1, 2] and a START state [1, 1] in one execution."""

    SOURCE = "qa_variable_sequence_initial_state_file_implicit_model_repository"
    REPOSITORY = SOURCE  # for --repository and load_tests: the models come from here
    ENTRY = "ragged-state-batch"
    LABEL = "RaggedStateBatchTest"
    WIDTH = 2
    QUEUE_DELAY_MICROSECONDS = 2_000_000
    STAGGER_SECONDS = 0.2
    # A alone at its START, then A's step 1 with B's START (together), then B's END alone.
    ROUNDS = ({1: (1, "start")}, {1: (2, "end"), 2: (1, "start")}, {2: (5, "end")})
    # Two STARTs (equal states) that must share an execution, then their ENDs: the control.
    CONTROL = ({3: (1, "start"), 4: (1, "start")}, {3: (2, "end"), 4: (2, "end")})

    @classmethod
    def families(cls):
        """The tested families the entry can show in (the others keep their own state)."""
        tested = e2e_setup().discovery.tested
        return [f for f in report.entries()[cls.ENTRY].families if f in tested]

    @classmethod
    def setUpClass(cls):
        """A scratch repository of each family's model, waiting for two slots; one server."""
        report.CHECKS_RUN.add("ragged_batch")
        cls.scratch = pathlib.Path(tempfile.mkdtemp(prefix="ragged_state_batch."))
        cls.addClassCleanup(shutil.rmtree, cls.scratch, ignore_errors=True)
        cls.models = [cls._waiting_copy(f) for f in cls.families()]
        cls.start_server(cls.scratch)
        for model in cls.models:
            cls.http.load_model(model.name)

    @classmethod
    def _waiting_copy(cls, family):
        name = f"{family}_sequence_int32"
        target = shutil.copytree(built_root() / cls.SOURCE / name, cls.scratch / name)
        config = parse_config((target / "config.pbtxt").read_text())
        config.sequence_batching.direct.max_queue_delay_microseconds = cls.QUEUE_DELAY_MICROSECONDS
        config.sequence_batching.direct.minimum_slot_utilization = 2 / config.max_batch_size
        # One instance: core gives onnxruntime two CPU instances without a count.
        config.instance_group[0].count = 1
        (target / "config.pbtxt").chmod(0o644)
        (target / "config.pbtxt").write_text(config_text(config))
        return client.ModelInfo(name=name, dtype="int32", batched=True, family=family,
                                initial_state="file", repository=cls.SOURCE)

    def _together(self, model, requests):
        """Send {corrid: (value, flags)} STAGGER_SECONDS apart so they meet in one batch."""
        answers = {}

        def send(index, corrid, value, flags):
            connection = client.connect("grpc", self.server.grpc_url)
            time.sleep(index * self.STAGGER_SECONDS)
            try:
                answers[corrid] = _answer("grpc", connection, model, corrid,
                                          Step(value, "start" in flags, "end" in flags), self.WIDTH)
            finally:
                connection.close()

        threads = [threading.Thread(target=send, args=(i, c, v, f))
                   for i, (c, (v, f)) in enumerate(requests.items())]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return answers

    def test_step_one_batched_with_a_start(self):
        """A's step 1 and B's START in one execution: the contract's answers, or the bug's."""
        rounds = [{c: (np.full([self.WIDTH], v), f) for c, (v, f) in r.items()} for r in self.ROUNDS]
        for model in self.models:
            with self.subTest(model=model.name):
                model_dir = self.scratch / model.name
                bug = predictions.open_elements(model_dir, model.family, rounds)
                contract = predictions.answers(model_dir, model.family, rounds,
                                               fixed=predictions.triton_sim.FIXED_TRITON)
                client.SEQUENCES_SENT[model.name] += 4
                before = client.inference_counts(self.http, [model.name])
                self._together(model, self.CONTROL[0])
                after = client.inference_counts(self.http, [model.name])
                self._together(model, self.CONTROL[1])
                self._together(model, self.ROUNDS[0])
                mixed = self._together(model, self.ROUNDS[1])
                self._together(model, self.ROUNDS[2])
                control = tuple(a - b for a, b in zip(after, before, strict=True))
                if control != (2, 1):
                    report.untestable(self.ENTRY, f"{model.name}: two STARTs sent together ran"
                                      f" as {control[0]} requests in {control[1]} executions, so"
                                      " the mixed batch could not be forced in this run")
                    continue
                answers = [mixed[1], mixed[2]]
                outcome = _judge(self.ENTRY, model, answers, [bug[1][1], bug[2][0]],
                                 [contract[1][1], contract[2][0]], type(self).__name__)
                self.assertNotEqual(outcome, catalogue.WRONG,
                                    f"{model.name}: A step 1 and B START answered {answers}")


def invalid_repo():
    """The invalid-model repository's folder (IMPLICIT_INVALID_REPO), or None when not given."""
    folder = os.environ.get(INVALID_REPO_VAR)
    return pathlib.Path(folder) if folder else None


class InvalidModelsTest(OwnServer, unittest.TestCase):
    """Models Triton must refuse: each loaded alone, refused naming its problem, or a catalogued bug."""

    LABEL = "InvalidModelsTest"
    CRASH = "refused-load-crash"
    ATTEMPTS = 4

    @classmethod
    def setUpClass(cls):
        """One server on the invalid-model repository; nothing loaded."""
        report.CHECKS_RUN.add("invalid_models")
        root = invalid_repo()
        manifest = json.loads((root / "manifest.json").read_text())
        tested = e2e_setup().discovery.tested
        cls.models = [m for m in manifest["models"] if m["family"] in tested]
        cls.refused, cls.crashes = [], 0
        cls.repository = root / manifest["repository"]
        report.INVALID["models"] += len(cls.models)
        cls.start_server(cls.repository)

    @classmethod
    def tearDownClass(cls):
        """An intermittent crash that did not happen proves nothing: say so for its verdict."""
        if not cls.crashes:
            report.untestable(cls.CRASH, f"intermittent: no crash in this run's"
                                         f" {len(cls.models)} loads")

    def load(self, info):
        """Load a model: None when it loaded, the refusal's message, or CRASHED.

        A server that dies while loading (catalogue entry refused-load-crash)
        is recorded, replaced by a fresh one, and the model loaded again, up
        to ATTEMPTS times; a model whose every attempt killed the server is
        CRASHED (the catalogued crash, its own verdict unknown).
        """
        for _ in range(self.ATTEMPTS):
            outcome = self._load_while_alive(info.name)
            if outcome is not _DIED:
                if isinstance(outcome, Exception):
                    raise outcome
                return outcome
            type(self).crashes += 1
            status = self.restart_server(self.repository, self.crashes)
            report.observe(self.CRASH, info, catalogue.PRESENT,
                           f"the server died (exit status {status}) loading {info.name}")
        return CRASHED

    def _load_while_alive(self, name):
        """One load of `name`: None, the refusal's message, an unexpected error, or _DIED.

        The load runs on a connection of its own in a thread while the
        server process is watched: a server that dies leaves the call
        hanging until its timeout (its python stubs may keep the socket
        open), so its death ends the wait at once (_DIED).
        """
        outcome = queue.Queue()
        url = self.server.http_url

        def load():
            connection = httpclient.InferenceServerClient(
                url, connection_timeout=self.LOAD_SECONDS, network_timeout=self.LOAD_SECONDS)
            try:
                connection.load_model(name)
                outcome.put(None)
            except InferenceServerException as err:
                outcome.put(err.message())
            except Exception as err:  # noqa: BLE001 - the connection broke: judged below
                outcome.put(err)
            finally:
                connection.close()

        threading.Thread(target=load, daemon=True).start()
        deadline = time.monotonic() + self.LOAD_SECONDS + self.WATCH_SECONDS
        while time.monotonic() < deadline:
            try:
                answer = outcome.get(timeout=self.WATCH_SECONDS)
            except queue.Empty:
                if not self.server.running():
                    return _DIED
                continue
            if isinstance(answer, Exception):  # the connection broke: see whether the server died
                time.sleep(1)
            # (A refused load leaves the server not "ready": ask whether its process runs.)
            if answer is not None and not self.server.running():
                return _DIED
            return answer
        return TimeoutError(f"loading {name} took over {self.LOAD_SECONDS}s on a live server")

    @staticmethod
    def catalogued(model):
        """The catalogue entry whose bug makes this model load, or None."""
        for entry in report.entries().values():
            if model["defect"] in entry.defects and model["family"] in entry.families:
                return entry
        return None

    def test_each_model_alone(self):
        """Load each model alone: refused naming the problem, or loaded as a catalogued bug predicts."""
        for model in self.models:
            with self.subTest(model=model["name"]):
                info = client.ModelInfo(name=model["name"], dtype="int32", batched=False,
                                        family=model["family"])
                entry = self.catalogued(model)
                refusal = self.load(info)
                if refusal is CRASHED:
                    report.INVALID["crashed"] += 1
                    _line(model, f"the server died at each of {self.ATTEMPTS} loads:"
                                 f" KNOWN TRITON BUG ({self.CRASH})")
                    continue
                if refusal is not None:
                    self.refused.append(model["name"])
                    self._refused(model, entry, info, refusal)
                    continue
                self.http.unload_model(model["name"])
                if entry is not None:
                    report.observe(entry.id, info, catalogue.PRESENT, "loaded")
                    report.INVALID["catalogued"] += 1
                    _line(model, f"loaded: KNOWN TRITON BUG ({entry.id})")
                    continue
                report.INVALID["problems"] += 1
                _line(model, "loaded: FAIL")
                self.fail(f"{model['name']} loaded; Triton must refuse it ({model['what']})")

    def _refused(self, model, entry, info, message):
        if entry is not None:
            report.observe(entry.id, info, catalogue.FIXED, "refused")
        missing = [m for m in model["mentions"] if m not in message]
        if missing:
            report.INVALID["problems"] += 1
            _line(model, f"refused, FAIL: the message lacks {missing}")
            self.fail(f"{model['name']} was refused, but the message does not name the problem"
                      f" ({model['what']}; it should hold {missing}): {message}")
        report.INVALID["refused"] += 1
        _line(model, "refused naming the problem: ok")


def _line(model, verdict):
    """One invalid model's line on stderr, as the checks print each model."""
    sys.stderr.write(f"  [{model['family']}] {INVALID_LABEL}/{model['name']} ({model['defect']}):"
                     f" {verdict}\n")


INVALID_LABEL = "invalid"


def applicable(test_class):
    """Whether a catalogue check class has something to run with this server and these inputs."""
    if test_class is RaggedStateBatchTest:
        return bool(RaggedStateBatchTest.families())
    if test_class is InvalidModelsTest:
        return invalid_repo() is not None
    return True

