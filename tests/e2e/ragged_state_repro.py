"""Reproduce Triton's batching of differently shaped implicit states: `bazel run //tests:ragged_state_repro`.

    bazel run //tests:ragged_state_repro -- --real-backends [--verbose-log]

Why this exists (issue 16): under load, the ragged-batch check of the
variable-shape repositories once got `[[101, 1]]` from a libtorch model at
the first step of a width-2 sequence (want `[[101, 101]]`) and an error
with an empty message from onnx models. The cause is Triton core, not the
models: the direct sequence batcher batches slots whose *client* inputs
have equal shapes (`RequiredEqualInputs` over the config inputs with a -1
dim) but never compares the implicit state, which is only attached to the
request after the batch is formed. A variable-shape state starts as `[1]`
(the initial-state dims, -1 -> 1) and becomes `[width]` after the first
step, so a sequence at its first step and one of the same width at a later
step can share an execution. The backend then builds the batched
`INPUT_STATE` from the first request's shape and the requests' bytes laid
end to end: the onnxruntime backend hands ONNX Runtime a buffer too small
for that shape (the batch fails) or too large (rows after the first read
their neighbours' bytes); the pytorch backend leaves the missing elements
unset.

This binary forces that batch deterministically instead of waiting for a
loaded machine to produce it: it copies each tested family's
`<family>_sequence_int32` of the variable file-state repository into a
scratch repository, adds `direct { max_queue_delay_microseconds,
minimum_slot_utilization }` so the batcher waits for two slots and pins one
model instance, and sends
two width-2 sequences so that one execution holds sequence A at step 1
(state `[1, 2]`, slot 0) and sequence B at its START (state `[1, 1]`,
slot 1). Then, the other way round, C at its START in slot 0 beside D at
step 2 in slot 1. Each family's answers are printed beside the contract's,
with the executions the server counted. Families that keep their own state
(python, savedmodel) never read Triton's state, so they stay right. Exits
0 when it ran (the report is the result), 2 on bad arguments or set-up.
"""

import argparse
import os
import pathlib
import shutil
import sys
import tempfile
import threading
import time

from tritonclient.utils import InferenceServerException

from generators.model_config import config_text, parse_config
from tests.e2e import real_backends
from tests.e2e import sequence_client as client
from tests.e2e.expectations import Step
from tests.e2e.installation import InstallationError
from tests.e2e.served_repository import built_root, e2e_setup
from tests.e2e.triton_server import TritonServer

SOURCE = "qa_variable_sequence_initial_state_file_implicit_model_repository"
WIDTH = 2
INITIAL = 100  # the file initial state of the int32 models
QUEUE_DELAY_MICROSECONDS = 2_000_000
STAGGER_SECONDS = 0.2


def _scratch_repository(root, families):
    """Copies of each family's batched int32 variable file-state model, waiting for two slots."""
    scratch = pathlib.Path(tempfile.mkdtemp(prefix="ragged_state_repro."))
    models = []
    for fam in families:
        name = f"{fam}_sequence_int32"
        source = root / SOURCE / name
        if not source.is_dir():
            continue
        target = shutil.copytree(source, scratch / name)
        config = parse_config((target / "config.pbtxt").read_text())
        direct = config.sequence_batching.direct
        direct.max_queue_delay_microseconds = QUEUE_DELAY_MICROSECONDS
        direct.minimum_slot_utilization = 2 / max(1, config.max_batch_size)
        # One instance: without a count, core gives onnxruntime and tensorflow
        # models two CPU instances, and the sequences would land on different ones.
        config.instance_group[0].count = 1
        (target / "config.pbtxt").chmod(0o644)
        (target / "config.pbtxt").write_text(config_text(config))
        models.append(client.ModelInfo(name=name, dtype="int32", batched=True, family=fam,
                                       initial_state="file", repository=SOURCE))
    return scratch, models


def _together(url, model, requests):
    """Send (corrid, value, start, end) requests into one batch; corrid -> answer.

    They go out in list order, STAGGER_SECONDS apart (well within the batcher's
    queue delay), so a new sequence listed first takes the lower free slot.
    """
    answers = {}

    def send(index, corrid, value, start, end):
        connection = client.connect("grpc", url)
        time.sleep(index * STAGGER_SECONDS)
        try:
            answers[corrid] = client.infer("grpc", connection, model, corrid,
                                           Step(value, start, end), width=WIDTH).tolist()
        except InferenceServerException as err:
            answers[corrid] = f"error: {err.message()!r}"
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(i, *r)) for i, r in enumerate(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def _want(total):
    return [[INITIAL + total] * WIDTH]


def _scenarios(url, model):
    """(what, corrid, answer, contract's answer) for both orders of the mixed batch."""
    rows = []
    first = _together(url, model, [(1, 1, True, False)])  # A alone: state [1,1] -> [1,2]
    rows.append(("A step 0 alone", 1, first[1], _want(1)))
    mixed = _together(url, model, [(1, 2, False, True), (2, 1, True, False)])
    rows.append(("A step 1 (state [1,2], slot 0) batched with B's START", 1, mixed[1], _want(3)))
    rows.append(("B START (state [1,1], slot 1) batched with A step 1", 2, mixed[2], _want(1)))
    _together(url, model, [(2, 5, False, True)])  # end B: every slot free again
    pair = _together(url, model, [(3, 1, True, False), (4, 1, True, False)])  # C slot 0, D slot 1
    rows.append(("C START beside D START (equal states)", 3, pair[3], _want(1)))
    ended = _together(url, model, [(3, 2, False, True), (4, 2, False, False)])  # C ends, frees slot 0
    rows.append(("D step 1 beside C's END (equal states)", 4, ended[4], _want(3)))
    late = _together(url, model, [(5, 1, True, True), (4, 3, False, True)])  # E takes slot 0
    rows.append(("E START+END (state [1,1], slot 0) batched with D step 2", 5, late[5], _want(1)))
    rows.append(("D step 2 (state [1,2], slot 1) batched with E's START", 4, late[4], _want(6)))
    return rows


def main(argv=None):
    """Run both scenarios on every tested family and print what the server answered."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    real_backends.add_tool_arguments(parser)
    parser.add_argument("--verbose-log", action="store_true",
                        help="start the server with --log-verbose=1 (batch sizes in the log)")
    parser.add_argument("--repo-default", help=argparse.SUPPRESS)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    real_backends.use_tool_arguments(args)
    if args.repo_default:
        os.environ.setdefault("IMPLICIT_REPO", args.repo_default)
    try:
        setup = e2e_setup()
    except (InstallationError, FileNotFoundError, ValueError) as err:
        sys.stderr.write(f"ragged_state_repro: {err}\n")
        return 2
    scratch, models = _scratch_repository(built_root(), setup.discovery.tested)
    log_dir = pathlib.Path(tempfile.mkdtemp(prefix="ragged_state_repro_log."))
    server = TritonServer(scratch, label="ragged_state_repro", log_dir=log_dir,
                          installation=setup.installation, cpu_only=not setup.discovery.gpu,
                          extra_args=["--log-verbose=1"] if args.verbose_log else [])
    print(f"server: {setup.installation.source}\nlog: {server.log_path}")
    with server:
        http = client.connect("http", server.http_url)
        for model in models:
            http.load_model(model.name)
            before = client.inference_counts(http, [model.name])
            print(f"\n[{model.family}] {model.name}")
            for what, corrid, got, want in _scenarios(server.grpc_url, model):
                verdict = "ok" if got == want else "WRONG"
                print(f"  {verdict:5} {what}: corrid {corrid} got {got}, contract {want}")
            after = client.inference_counts(http, [model.name])
            inferences, executions = (a - b for a, b in zip(after, before, strict=True))
            print(f"  server statistics: {inferences} requests in {executions} executions")
        http.close()
    shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
