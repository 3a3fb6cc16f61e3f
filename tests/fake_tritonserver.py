"""A fake `tritonserver`: Triton's HTTP and gRPC protocols over verification/triton_sim.py.

verify_test points `verify --triton-server` at a script that runs this
module, so the verify tool is driven end to end (server start, explicit
model control, HTTP and gRPC inference, streams, configuration, the log
check) against a server whose behaviour the test chooses:

- released Triton by default: every catalogued bug the simulation follows
  is present (`triton_sim`'s rules, the contract's arithmetic around them,
  verification/contract_runner.py);
- `FAKE_TRITON_FIXED=8586,6538,...` runs those entries fixed;
- `FAKE_TRITON_WRONG=<model>,...` adds 1 to those models' OUTPUT: an answer
  that is neither the contract's nor a bug's, a new failure.

It takes tritonserver's flags (`--model-repository`, `--http-port`,
`--grpc-port`; the others are accepted and ignored), serves numeric models
only (the contract runner's arithmetic), runs one request per execution,
logs Triton-style `I` lines to stdout, and exits 0 on SIGTERM. Models of a
family that keeps its own state are served with core's pairing out of their
reach, as verification/predictions.py has it.
"""

import argparse
import concurrent.futures
import http.server
import json
import os
import pathlib
import signal
import sys
import threading
import time
from urllib.parse import unquote

import grpc
import numpy as np
from tritonclient.grpc import service_pb2, service_pb2_grpc

from verification import triton_sim
from verification.contract_runner import contract_runner
from verification.families import FAMILIES, family

_TYPES = {"INT32": np.int32, "FP32": np.float32, "INT64": np.int64, "BOOL": np.bool_}
_NAMES = {np.dtype(t): name for name, t in _TYPES.items()}
_BACKEND_FAMILY = {f.backend: name for name, f in FAMILIES.items()}
_PLATFORM_BACKEND = {"onnxruntime_onnx": "onnxruntime", "pytorch_libtorch": "pytorch",
                     "tensorflow_savedmodel": "tensorflow", "tensorrt_plan": "tensorrt"}


class FakeError(Exception):
    """An error the fake answers a request with (Triton's text)."""


def log(message):
    """A Triton-style info line on stdout (the server log the checks read)."""
    sys.stdout.write(f"I0101 00:00:00.000000 {os.getpid()} fake_tritonserver.py:1] \"{message}\"\n")
    sys.stdout.flush()


class Model:
    """One loaded model: its simulation and statistics, one request at a time."""

    def __init__(self, folder, fixed, wrong):
        """Load `folder`'s config; refuse what the fake cannot serve."""
        config = triton_sim.parse_config((folder / "config.pbtxt").read_text())
        backend = _PLATFORM_BACKEND.get(config.platform, config.backend)
        fixed = set(fixed)
        if family(_BACKEND_FAMILY[backend]).keeps_own_state:
            fixed.add(triton_sim.NAME_ORDER)
        try:
            runner = contract_runner(config)
        except triton_sim.SimError as err:
            raise FakeError(f"load failed for model '{config.name}': {err}") from None
        self.config = config
        self.sim = triton_sim.SequenceBatcherSim(folder, runner, updates_state=True, fixed=fixed)
        self.offset = 1 if config.name in wrong else 0
        self.lock = threading.Lock()
        self.inferences = self.executions = 0

    def infer(self, inputs, outputs, corrid, start, end):
        """OUTPUT of one request, as Triton answers it (a FakeError for Triton's refusals)."""
        unexpected = sorted(set(outputs) - {o.name for o in self.config.output})
        if unexpected:
            raise FakeError(f"unexpected inference output '{unexpected[0]}' for model"
                            f" '{self.config.name}'")
        data = inputs[self.config.input[0].name]
        batch = data.shape[0] if self.config.max_batch_size else 1
        value = data[0] if self.config.max_batch_size else data
        flags = " ".join(f for f, on in (("start", start), ("end", end)) if on)
        with self.lock:
            try:
                answer = self.sim.step_each({corrid: (value, flags, batch)})[corrid]
            except triton_sim.SimError as err:
                raise FakeError(str(err)) from None
            if isinstance(answer, triton_sim.TritonError):
                raise FakeError(str(answer))
            self.inferences += 1
            self.executions += 1
        return {self.config.output[0].name: answer.output + self.offset}


class Server:
    """The models of one repository, loaded on request."""

    def __init__(self, repository, fixed, wrong):
        """Nothing loaded (explicit model control)."""
        self.repository, self.fixed, self.wrong = pathlib.Path(repository), fixed, wrong
        self.models = {}

    def load(self, name):
        """Load (or reload) a model; a FakeError names why it cannot."""
        folder = self.repository / name
        if not (folder / "config.pbtxt").is_file():
            raise FakeError(f"failed to load '{name}', failed to poll from model repository")
        self.models[name] = Model(folder, self.fixed, self.wrong)
        log(f"successfully loaded '{name}' version 1")

    def model(self, name):
        """A loaded model, or Triton's error for one that is not."""
        if name not in self.models:
            raise FakeError(f"Request for unknown model: '{name}' is not found")
        return self.models[name]


def _array(datatype, shape, raw):
    return np.frombuffer(raw, dtype=_TYPES[datatype]).reshape(shape).copy()


class HttpHandler(http.server.BaseHTTPRequestHandler):
    """Triton's KServe v2 HTTP endpoints, as far as the checks use them."""

    server_state = None

    def log_message(self, *args):  # noqa: D102 - quiet: the log is the server's, on stdout
        del args

    def _send(self, status, body, header_length=None):
        self.send_response(status)
        self.send_header("Content-Type", "application/json" if header_length is None
                         else "application/octet-stream")
        if header_length is not None:
            self.send_header("Inference-Header-Content-Length", str(header_length))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status, value):
        self._send(status, json.dumps(value).encode())

    def do_GET(self):  # noqa: N802 - http.server's name
        """Health, configuration and statistics."""
        parts = [unquote(p) for p in self.path.strip("/").split("/")]
        state = self.server_state
        try:
            if parts[:2] == ["v2", "health"]:
                self._json(200, {})
            elif parts[:2] == ["v2", "models"] and parts[-1] == "config":
                self._json(200, state.model(parts[2]).sim.served_config())
            elif parts[:2] == ["v2", "models"] and parts[-1] == "stats":
                model = state.model(parts[2])
                self._json(200, {"model_stats": [{
                    "name": parts[2], "version": "1", "inference_count": model.inferences,
                    "execution_count": model.executions}]})
            else:
                self._json(404, {"error": f"not found: {self.path}"})
        except FakeError as err:
            self._json(400, {"error": str(err)})

    def do_POST(self):  # noqa: N802 - http.server's name
        """Repository load and unload, inference."""
        parts = [unquote(p) for p in self.path.strip("/").split("/")]
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        state = self.server_state
        try:
            if parts[:3] == ["v2", "repository", "models"] and parts[-1] == "load":
                state.load(parts[3])
                self._json(200, {})
            elif parts[:3] == ["v2", "repository", "models"] and parts[-1] == "unload":
                state.models.pop(parts[3], None)
                self._json(200, {})
            elif parts[:2] == ["v2", "models"] and parts[-1] == "infer":
                self._infer(state.model(parts[2]), parts[2], body)
            else:
                self._json(404, {"error": f"not found: {self.path}"})
        except FakeError as err:
            self._json(400, {"error": str(err)})

    def _infer(self, model, name, body):
        length = int(self.headers.get("Inference-Header-Content-Length", len(body)))
        request, offset, inputs = json.loads(body[:length]), length, {}
        for tensor in request["inputs"]:
            size = tensor["parameters"]["binary_data_size"]
            inputs[tensor["name"]] = _array(tensor["datatype"], tensor["shape"],
                                            body[offset:offset + size])
            offset += size
        parameters = request.get("parameters", {})
        outputs = model.infer(inputs, [o["name"] for o in request.get("outputs", [])],
                              int(parameters.get("sequence_id", 0)),
                              bool(parameters.get("sequence_start")),
                              bool(parameters.get("sequence_end")))
        header, blobs = {"model_name": name, "outputs": []}, []
        for out_name, array in outputs.items():
            blob = np.ascontiguousarray(array).tobytes()
            header["outputs"].append({"name": out_name, "datatype": _NAMES[array.dtype],
                                      "shape": list(array.shape),
                                      "parameters": {"binary_data_size": len(blob)}})
            blobs.append(blob)
        text = json.dumps(header).encode()
        self._send(200, text + b"".join(blobs), header_length=len(text))


def _grpc_parameters(request):
    params = request.parameters
    corrid = params["sequence_id"].int64_param if "sequence_id" in params else 0
    return (corrid, params["sequence_start"].bool_param if "sequence_start" in params else False,
            params["sequence_end"].bool_param if "sequence_end" in params else False)


class GrpcService(service_pb2_grpc.GRPCInferenceServiceServicer):
    """Triton's gRPC inference endpoints the checks use: one request, and streams."""

    def __init__(self, state):
        """Serve `state`'s models."""
        self.state = state

    def _answer(self, request):
        model = self.state.model(request.model_name)
        inputs = {t.name: _array(t.datatype, list(t.shape), raw)
                  for t, raw in zip(request.inputs, request.raw_input_contents, strict=True)}
        outputs = model.infer(inputs, [o.name for o in request.outputs], *_grpc_parameters(request))
        response = service_pb2.ModelInferResponse(model_name=request.model_name, id=request.id)
        for name, array in outputs.items():
            response.outputs.add(name=name, datatype=_NAMES[array.dtype], shape=list(array.shape))
            response.raw_output_contents.append(np.ascontiguousarray(array).tobytes())
        return response

    def ServerLive(self, request, context):  # noqa: N802 - gRPC's name
        """Always live."""
        return service_pb2.ServerLiveResponse(live=True)

    def ModelInfer(self, request, context):  # noqa: N802 - gRPC's name
        """One request; Triton's refusals as INVALID_ARGUMENT."""
        try:
            return self._answer(request)
        except FakeError as err:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(err))
            return None

    def ModelStreamInfer(self, request_iterator, context):  # noqa: N802 - gRPC's name
        """A stream: each request answered in order, an error as the response's message."""
        for request in request_iterator:
            try:
                yield service_pb2.ModelStreamInferResponse(infer_response=self._answer(request))
            except FakeError as err:
                yield service_pb2.ModelStreamInferResponse(error_message=str(err))


def main(argv=None):
    """Serve until SIGTERM; exit 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-repository", required=True)
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--grpc-port", type=int, required=True)
    args, _ = parser.parse_known_args(argv)
    split = lambda name: [v for v in os.environ.get(name, "").split(",") if v]  # noqa: E731
    state = Server(args.model_repository, split("FAKE_TRITON_FIXED"), set(split("FAKE_TRITON_WRONG")))
    HttpHandler.server_state = state
    web = http.server.ThreadingHTTPServer(("127.0.0.1", args.http_port), HttpHandler)
    rpc = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=16))
    service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(GrpcService(state), rpc)
    rpc.add_insecure_port(f"127.0.0.1:{args.grpc_port}")
    rpc.start()
    threading.Thread(target=web.serve_forever, daemon=True).start()
    log(f"fake tritonserver on {args.model_repository}, fixed: {state.fixed or 'none'}")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    while not stop.is_set():
        time.sleep(0.05)
    web.shutdown()
    rpc.stop(grace=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
