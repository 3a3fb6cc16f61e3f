"""Sends implicit-state sequences to a live server the way Triton's QA clients do.

Mirrors upstream `qa/L0_sequence_batcher/sequence_util.py` (reference
section 7.1): data tensor `INPUT` of shape [width] (nobatch) or [1, width]
(batched), every element the step's value in the model's I/O dtype (strings
as decimal text, bool models driven with int32), output `OUTPUT`.
`run_sequence` sends one request at a time over HTTP or gRPC;
`stream_sequences` runs several sequences in parallel, one gRPC stream each,
so the sequence batcher batches them; `load_run` drives many sequences at
once and counts wrong results. `SEQUENCES_SENT` counts the sequences sent to
each model (the verify entry point's "sequences checked").
"""

import collections
import dataclasses
import queue
import threading
import time

import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient

from verification.expectations import Step, load_output, steps  # noqa: F401 - Step re-exported
from verification.families import state_output_name, tensor_name

PROTOCOLS = {"http": httpclient, "grpc": grpcclient}
# How the clients type each model dtype's data (bool models carry int32 data).
_IO_TYPES = {
    "float32": (np.float32, "FP32"),
    "int32": (np.int32, "INT32"),
    "bool": (np.int32, "INT32"),
    "object": (np.object_, "BYTES"),
}
_RESPONSE_SECONDS = 60
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

    @classmethod
    def from_manifest(cls, entry):
        """Build from one `models` entry of manifest.json."""
        variant = entry["variant"]
        pairs = variant.get("state_pairs") or [["INPUT_STATE", "OUTPUT_STATE"]]
        return cls(name=entry["name"], dtype=variant["dtype"], batched=variant["max_batch"] > 0,
                   state_pairs=len(pairs), family=variant["backend"],
                   initial_state=variant.get("initial_state", "none"),
                   repository=entry["repository"],
                   state_outputs=tuple(output for _, output in pairs))

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


def tensor(model, value, width=1, batch=1):
    """The array a client sends (or expects back) holding `value` everywhere."""
    shape = [batch, width] if model.batched else [width]
    numpy_type, _ = _IO_TYPES[model.dtype]
    if model.is_string:
        return np.full(shape, str(value).encode(), dtype=np.object_)
    return np.full(shape, value, dtype=numpy_type)


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
                want = load_output(model.family, model.dtype, value, index)
                good = np.array_equal(output, tensor(model, want))
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
