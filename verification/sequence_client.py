"""Sends implicit-state sequences to a live server the way Triton's QA clients do.

Mirrors upstream `qa/L0_sequence_batcher/sequence_util.py` (reference
section 7.1): data tensor `INPUT` of shape [width] (nobatch) or [1, width]
(batched), every element the step's value (or the step's tuple of values,
one per element) in the model's I/O dtype (strings as decimal text,
upstream's bool models driven with int32; the state-coverage dtypes as
their own Triton type: TYPE_BOOL as numpy bool, TYPE_BF16 as ml_dtypes'
bfloat16, which the pinned tritonclient requires), output `OUTPUT` (of the
state's dtype where a model's state is wider than INPUT, `output_tensor`).
`run_sequence` sends one request at a time over HTTP or gRPC;
`stream_sequences` runs several sequences in parallel, one gRPC stream each,
so the sequence batcher batches them; `run_rounds` sends rounds of requests
to many models at once (over gRPC one stream per sequence, every request of
a round in flight together, the next round once all are answered; over
HTTP a few connections, each for its share of the models);
`load_run` drives many sequences at once and counts wrong results.
`SEQUENCES_SENT` counts the sequences sent to each model (the verify entry
point's "sequences checked").
"""

import collections
import concurrent.futures
import dataclasses
import queue
import threading
import time
from typing import Dict, List, Optional, Sequence, Tuple

import ml_dtypes
import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from verification.expectations import Step, load_output, steps  # noqa: F401 - Step re-exported
from verification.families import state_output_name, tensor_name

PROTOCOLS = {"http": httpclient, "grpc": grpcclient}
# How the clients type each model dtype's data (upstream's bool models carry int32
# data; "boolean" is a real TYPE_BOOL model).
_IO_TYPES = {
    "float32": (np.float32, "FP32"),
    "int32": (np.int32, "INT32"),
    "bool": (np.int32, "INT32"),
    "object": (np.object_, "BYTES"),
    "boolean": (np.bool_, "BOOL"),
    "int8": (np.int8, "INT8"),
    "int16": (np.int16, "INT16"),
    "int64": (np.int64, "INT64"),
    "uint8": (np.uint8, "UINT8"),
    "uint16": (np.uint16, "UINT16"),
    "uint32": (np.uint32, "UINT32"),
    "uint64": (np.uint64, "UINT64"),
    "float16": (np.float16, "FP16"),
    # numpy has no bfloat16; tritonclient 2.73 takes (and returns) ml_dtypes' type.
    "bfloat16": (ml_dtypes.bfloat16, "BF16"),
    "float64": (np.float64, "FP64"),
}
_RESPONSE_SECONDS = 60
# gRPC streams `run_rounds` opens at most: one sequence on each at a time.
ROUND_STREAMS = 64
# HTTP connections `run_rounds` sends on at once, each for its share of the models.
HTTP_THREADS = 4
_BARRIER_SECONDS = 60
# model name -> sequences sent to it by this process.
SEQUENCES_SENT = collections.Counter()


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """What a client needs to know about one model of the manifest."""

    name: str
    dtype: str
    batched: bool
    state_pairs: int = 1
    family: str = "python"
    initial_state: str = "none"
    repository: str = ""
    state_outputs: tuple = ()  # each pair's output state name, config order (default names if empty)
    state_dtype: str = ""  # the state's (and OUTPUT's) dtype when it is not `dtype`
    state_dims: Optional[tuple] = None  # the state's dims when they are not INPUT's

    @classmethod
    def from_manifest(cls, entry):
        """Build from one `models` entry of manifest.json."""
        variant = entry["variant"]
        pairs = variant.get("state_pairs") or [["INPUT_STATE", "OUTPUT_STATE"]]
        dims = variant.get("state_dims")
        return cls(name=entry["name"], dtype=variant["dtype"], batched=variant["max_batch"] > 0,
                   state_pairs=len(pairs), family=variant["backend"],
                   initial_state=variant.get("initial_state", "none"),
                   repository=entry["repository"],
                   state_outputs=tuple(output for _, output in pairs),
                   state_dtype=variant.get("state_dtype", ""),
                   state_dims=None if dims is None else tuple(dims))

    @property
    def output_dtype(self):
        """OUTPUT's dtype: the state's (a wider state's, e.g. int64 for int32 INPUT), else INPUT's."""
        return self.state_dtype or self.dtype

    @property
    def input_name(self):
        """The data input's name (INPUT; INPUT__0 for libtorch)."""
        return tensor_name(self.family, "INPUT", 0)

    @property
    def output_name(self):
        """The data output's name (OUTPUT; OUTPUT__0 for libtorch)."""
        return tensor_name(self.family, "OUTPUT", 0)

    def state_output_name(self, pair):
        """The output name of state pair `pair` (OUTPUT_STATE, OUTPUT_STATE_1, ...)."""
        base = self.state_outputs[pair] if pair < len(self.state_outputs) else None
        return state_output_name(self.family, pair, base)

    @property
    def is_string(self):
        """Whether the model's data are strings."""
        return self.dtype == "object"


def tensor(model, value, width=1, batch=1, dtype=None):
    """The array a client sends holding `value` everywhere (a tuple: one value per element).

    `dtype` overrides the model's INPUT dtype (`output_tensor`).
    """
    shape = [batch, width] if model.batched else [width]
    numpy_type, _ = _IO_TYPES[dtype or model.dtype]
    if model.is_string:
        return np.full(shape, str(value).encode(), dtype=np.object_)
    if isinstance(value, tuple):
        if len(value) != width:
            raise ValueError(f"{len(value)} element values {value} for width {width}")
        return np.broadcast_to(np.array(value, dtype=numpy_type), shape).copy()
    return np.full(shape, value, dtype=numpy_type)


def output_tensor(model, value, width=1):
    """The OUTPUT array the contract expects back: `tensor`, typed as OUTPUT (the state's dtype)."""
    return tensor(model, value, width, dtype=model.output_dtype)


def _inputs(module, model, value, width, batch):
    data = tensor(model, value, width, batch)
    infer_input = module.InferInput(model.input_name, list(data.shape), _IO_TYPES[model.dtype][1])
    infer_input.set_data_from_numpy(data)
    return [infer_input]


def _request(module, model, corrid, step, width=1, batch=1, outputs=None):
    """Keyword arguments of one infer / async_stream_infer call (outputs: OUTPUT alone)."""
    outputs = outputs or (model.output_name,)
    return {
        "model_name": model.name,
        "inputs": _inputs(module, model, step.value, width, batch),
        "outputs": [module.InferRequestedOutput(name) for name in outputs],
        "sequence_id": corrid,
        "sequence_start": step.start,
        "sequence_end": step.end,
    }


def connect(protocol, url):
    """A tritonclient InferenceServerClient for "http" or "grpc"."""
    return PROTOCOLS[protocol].InferenceServerClient(url)


def infer(protocol, connection, model, corrid, step, **options):
    """Send one request and return its OUTPUT array (raises the server's error)."""
    result = connection.infer(**_request(PROTOCOLS[protocol], model, corrid, step, **options))
    return result.as_numpy(model.output_name)


def run_sequence(protocol, connection, model, corrid, sequence, width=1):
    """Send a sequence request by request; returns every OUTPUT array."""
    SEQUENCES_SENT[model.name] += 1
    return [infer(protocol, connection, model, corrid, step, width=width) for step in sequence]


def _stream_one(url, model, corrid, sequence, width, barrier, results, lockstep):
    responses = queue.Queue()
    connection = grpcclient.InferenceServerClient(url)
    connection.start_stream(callback=lambda result, error: responses.put((result, error)))

    def answer():
        result, error = responses.get(timeout=_RESPONSE_SECONDS)
        return error if error is not None else result.as_numpy(model.output_name)

    try:
        outputs = []
        barrier.wait()
        for step in sequence:
            connection.async_stream_infer(**_request(grpcclient, model, corrid, step, width))
            if lockstep:  # this step's answer, then wait for every sequence's
                outputs.append(answer())
                barrier.wait()
        outputs += [answer() for _ in range(len(sequence) - len(outputs))]
        results[corrid] = outputs
    finally:
        connection.stop_stream()
        connection.close()


def stream_sequences(url, model, sequences, lockstep=False):
    """Run sequences in parallel, one gRPC stream and thread each.

    Args:
        url: gRPC host:port.
        model: the ModelInfo of the model.
        sequences: corrid -> (list of Step, data width).
        lockstep: send step k of every sequence only after every sequence's
            step k - 1 was answered (sequences of equal length), so that no
            execution holds two sequences at different steps. Ragged
            variable-shape sequences need it on Triton as released: core
            batches equal client shapes without comparing implicit states,
            whose shape grows after the first step (docs/verification.md, "Triton
            batches differently shaped states"; catalogue entry ragged-state-batch).

    Returns:
        corrid -> list of OUTPUT arrays (or the error of a failed request).
    """
    if lockstep and len({len(seq) for seq, _ in sequences.values()}) > 1:
        raise ValueError("lockstep sequences must have equal lengths")
    results = {}
    SEQUENCES_SENT[model.name] += len(sequences)
    barrier = threading.Barrier(len(sequences), timeout=_BARRIER_SECONDS)
    threads = [
        threading.Thread(target=_stream_one, daemon=True,
                         args=(url, model, corrid, seq, width, barrier, results, lockstep))
        for corrid, (seq, width) in sequences.items()
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@dataclasses.dataclass(frozen=True)
class Request:
    """One request of `run_rounds`: step `step` of sequence `corrid` on `model`, `width` wide."""

    model: ModelInfo
    corrid: int
    step: Step
    width: int = 1

    @property
    def key(self):
        """The sequence it belongs to: (model name, corrid)."""
        return (self.model.name, self.corrid)


Answer = object  # an OUTPUT array, or the text of the error a refused request got


def _http_rounds(url, rounds, results, threads):
    """Rounds over HTTP: the models split over `threads` connections, each sending request by request.

    Each thread runs every round of its own models in order (a model's
    sequences never meet another thread's), so the models' sequences
    interleave on the server.
    """
    models = list(dict.fromkeys(name for name, _ in results))
    chunks = [set(models[i::threads]) for i in range(min(threads, len(models)))]

    def run(chunk):
        connection = httpclient.InferenceServerClient(url)
        try:
            for requests in rounds:
                for request in (r for r in requests if r.model.name in chunk):
                    try:
                        answer = infer("http", connection, request.model, request.corrid,
                                       request.step, width=request.width)
                    except InferenceServerException as err:
                        answer = err.message()
                    results[request.key].append(answer)
        finally:
            connection.close()

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(len(chunks), 1)) as pool:
        list(pool.map(run, chunks))


class _Stream:
    """One gRPC stream; it carries one sequence at a time, so its answers come back in order."""

    def __init__(self, url):
        self.answers = queue.Queue()
        self.connection = grpcclient.InferenceServerClient(url)
        self.connection.start_stream(
            callback=lambda result, error: self.answers.put((result, error)))

    def send(self, request):
        self.connection.async_stream_infer(**_request(
            grpcclient, request.model, request.corrid, request.step, request.width))

    def answer(self, model):
        result, error = self.answers.get(timeout=_RESPONSE_SECONDS)
        return error.message() if error is not None else result.as_numpy(model.output_name)

    def close(self):
        self.connection.stop_stream()
        self.connection.close()


def _groups(keys, size):
    """Split sequence keys into groups of at most `size`, never splitting a model's sequences."""
    by_model: Dict[str, list] = {}
    for key in keys:
        by_model.setdefault(key[0], []).append(key)
    groups, current = [], []
    for sequences in by_model.values():
        if len(sequences) > size:
            raise ValueError(f"model {sequences[0][0]} has {len(sequences)} sequences at once,"
                             f" more than the {size} streams")
        if len(current) + len(sequences) > size:
            groups.append(current)
            current = []
        current += sequences
    return groups + ([current] if current else [])


def _grpc_rounds(url, rounds, results, streams):
    """Rounds over gRPC, one stream per sequence; models in groups that fit the streams.

    Every round of a group runs before the next group starts, so a model's
    sequences stay together round by round.
    """
    groups = _groups(list(results), streams)
    pool = [_Stream(url) for _ in range(max((len(g) for g in groups), default=0))]
    try:
        for group in groups:
            stream_of = {key: pool[index] for index, key in enumerate(group)}
            for requests in rounds:
                mine = [r for r in requests if r.key in stream_of]
                for request in mine:
                    stream_of[request.key].send(request)
                for request in mine:
                    results[request.key].append(stream_of[request.key].answer(request.model))
    finally:
        for stream in pool:
            stream.close()


def run_rounds(protocol: str, url: str, rounds: Sequence[Sequence[Request]],
               streams: int = ROUND_STREAMS) -> Dict[Tuple[str, int], List[Answer]]:
    """Send rounds of requests to many models' sequences side by side (each model has its own batcher).

    Over gRPC each sequence has its own stream (at most `streams` at once:
    models are taken in groups that fit), every request of a round is in
    flight together, and a round's answers all come back before the next
    round is sent: a model's sequences sent in one round meet in its
    batcher together, and the order of START requests in separate rounds
    decides the slots. Over HTTP (one sequence per model) the models are
    shared out over HTTP_THREADS connections, each sending its models'
    requests one by one, round by round.

    Args:
        protocol: "http" or "grpc".
        url: the server's host:port for that protocol.
        rounds: lists of `Request`, at most one per sequence in a round.
        streams: the most gRPC streams open at once.

    Returns:
        (model name, corrid) -> the answers, in round order: OUTPUT arrays,
        or the error text of a refused request.
    """
    results: Dict[Tuple[str, int], List[Answer]] = {}
    for requests in rounds:
        keys = [r.key for r in requests]
        if len(set(keys)) != len(keys):
            raise ValueError(f"a round sends two requests of one sequence: {keys}")
        for request in requests:
            results.setdefault(request.key, [])
            if request.step.start:
                SEQUENCES_SENT[request.model.name] += 1
    if protocol == "http":
        _http_rounds(url, [r for r in rounds if r], results, HTTP_THREADS)
    else:
        _grpc_rounds(url, [r for r in rounds if r], results, streams)
    return results


def inference_counts(connection, names):
    """Summed (inference_count, execution_count) of models, over HTTP."""
    inferences = executions = 0
    for name in names:
        for stats in connection.get_inference_statistics(name)["model_stats"]:
            inferences += int(stats["inference_count"])
            executions += int(stats["execution_count"])
    return inferences, executions


@dataclasses.dataclass
class LoadReport:
    """Outcome of `load_run`."""

    requests: int = 0
    seconds: float = 0.0
    wrong: list = dataclasses.field(default_factory=list)

    @property
    def requests_per_second(self):
        """Throughput over the whole run."""
        return self.requests / self.seconds if self.seconds else 0.0


def _load_sequence(url, model, corrid, value, length, barrier, report, lock):
    connection = grpcclient.InferenceServerClient(url)
    with lock:
        SEQUENCES_SENT[model.name] += 1
    barrier.wait()
    try:
        for index, step in enumerate(steps([value] * length)):
            try:
                output = infer("grpc", connection, model, corrid, step)
                want = output_tensor(model, load_output(model.family, model.dtype, value, index))
                good = output.dtype == want.dtype and np.array_equal(output, want)
            except Exception as err:  # noqa: BLE001 - every failure is a wrong result
                output, good = err, False
            with lock:
                report.requests += 1
                if not good:
                    report.wrong.append((model.name, corrid, index, output))
    finally:
        connection.close()


def load_run(url, models, sequences, length, first_corrid=100_000):
    """Run many sequences at once over gRPC, spread round-robin over models.

    Sequence i sends the value i % 9 + 1 on every step, so its k-th output
    must be k times that value (an ONNX string model: the value itself,
    verification.expectations.load_output); every response is checked.

    Returns:
        A LoadReport with the request count, wall time and wrong results.
    """
    report, lock = LoadReport(), threading.Lock()
    barrier = threading.Barrier(sequences + 1, timeout=_BARRIER_SECONDS)
    threads = [
        threading.Thread(target=_load_sequence, daemon=True, args=(
            url, models[i % len(models)], first_corrid + i, i % 9 + 1, length,
            barrier, report, lock))
        for i in range(sequences)
    ]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.monotonic()
    for thread in threads:
        thread.join()
    report.seconds = time.monotonic() - started
    return report
