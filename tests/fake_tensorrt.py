"""A small stand-in for the `tensorrt` module, for CPU-only builder tests.

It records what `generators.backends.plan.plan_builder` asks of TensorRT (inputs, layers,
outputs, flags, profile shapes) and can evaluate the recorded network with
numpy, so tests check our call logic and the arithmetic it describes. It
enforces the few TensorRT rules the builder relies on (unique input and
output names, elementwise operands of one type and rank, bool select
conditions and NOT operands, identity outputs) but it is not TensorRT: it
proves nothing about real engines.

`make(api)` builds a fake for one API shape: "10" (weak typing,
DIRECT_IO, PREFER_PRECISION_CONSTRAINTS, ILayer.set_output_type), "11" (none
of those; layers record any attempt to reach set_output_type), "11-compat"
(11 flags, but layers still expose set_output_type) and "8" (explicit-batch
flag required, build_engine and max_workspace_size only).

A built plan can be run back: the fake runtime deserializes the bytes a
fake builder returned into an engine over the recorded network, and its
execution context reads its inputs from, and writes its outputs to, the
device buffers bound by address (`make(device=...)`, a
`tests.fake_cuda.DeviceMemory`). It refuses an unset input shape, an
address that is not a live device buffer or one too small, and the default
stream, so `tests/runners/plan_runner.py`'s buffer handling is tested
without a GPU.
"""

import types
from typing import Dict, List, Optional

import numpy as np

_NUMPY_OPS = {"SUM": np.add, "PROD": np.multiply, "EQUAL": np.equal, "AND": np.logical_and}
_BOOL_RESULT = frozenset({"EQUAL", "AND"})


class FakeTensor:
    """A network tensor: a name, a dtype and how to compute it."""

    def __init__(self, dtype: str, compute, shape=None, name: str = "") -> None:
        self.name, self.dtype, self.shape = name, dtype, shape
        self.allowed_formats: Optional[int] = None
        self._compute = compute

    def evaluate(self, feed: Dict[str, np.ndarray]) -> np.ndarray:
        """Value of the tensor for a feed of network inputs by name."""
        return self._compute(feed)


class FakeLayer:
    """A layer with one output; the "11" shape has no set_output_type."""

    def __init__(self, output: FakeTensor, typed_outputs: bool, probes: List[str]) -> None:
        self._output, self._typed, self._probes = output, typed_outputs, probes
        self.output_types: Dict[int, str] = {}

    def get_output(self, index: int) -> FakeTensor:
        """The layer's only output."""
        assert index == 0
        return self._output

    def __getattr__(self, name: str):
        """Expose set_output_type only in API shapes that have it; log every probe."""
        if name != "set_output_type":
            raise AttributeError(name)
        self._probes.append(name)
        if not self._typed:
            raise AttributeError(name)
        return lambda index, dtype: self.output_types.__setitem__(index, dtype)


class FakeNetwork:
    """Records the network definition calls of `generators.backends.plan.plan_builder`."""

    def __init__(self, api: "types.ModuleType") -> None:
        self.api = api
        self.inputs: List[FakeTensor] = []
        self.outputs: List[FakeTensor] = []
        self.layers: List[FakeLayer] = []
        self.identities: List[FakeLayer] = []
        self.read: set = set()  # inputs an evaluation actually read

    def _layer(self, tensor: FakeTensor) -> FakeLayer:
        layer = FakeLayer(tensor, self.api.LAYERS_HAVE_SET_OUTPUT_TYPE, self.api.probes)
        self.layers.append(layer)
        return layer

    def add_input(self, name: str, dtype: str, shape) -> FakeTensor:
        """Declare a network input; names are unique, as in TensorRT."""
        assert name not in {t.name for t in self.inputs}, f"input {name} declared twice"

        def compute(feed):
            self.read.add(name)
            return np.asarray(feed[name])

        tensor = FakeTensor(dtype, compute, tuple(shape), name)
        self.inputs.append(tensor)
        return tensor

    def add_constant(self, shape, weights) -> FakeLayer:
        """A constant layer; weights must match the declared shape."""
        array = weights.array
        assert tuple(shape) == array.shape, (shape, array.shape)
        return self._layer(FakeTensor(str(array.dtype), lambda feed: array, tuple(shape)))

    def add_elementwise(self, left: FakeTensor, right: FakeTensor, op: str) -> FakeLayer:
        """Elementwise layer; TensorRT wants one dtype and (when known) one rank."""
        assert left.dtype == right.dtype, f"{op} mixes {left.dtype} and {right.dtype}"
        if left.shape is not None and right.shape is not None:
            assert len(left.shape) == len(right.shape), f"{op} mixes ranks"
        if op == "AND":
            assert left.dtype == "bool", "AND needs bool operands"
        dtype = "bool" if op in _BOOL_RESULT else left.dtype
        shape = left.shape or right.shape

        def compute(feed):
            return _NUMPY_OPS[op](left.evaluate(feed), right.evaluate(feed)).astype(dtype)

        return self._layer(FakeTensor(dtype, compute, shape))

    def add_unary(self, operand: FakeTensor, op: str) -> FakeLayer:
        """Only NOT of a bool tensor is used."""
        assert op == "NOT" and operand.dtype == "bool"
        return self._layer(FakeTensor("bool", lambda f: np.logical_not(operand.evaluate(f)),
                                      operand.shape))

    def add_select(self, cond: FakeTensor, then: FakeTensor, other: FakeTensor) -> FakeLayer:
        """Select layer: bool condition, branches of one dtype."""
        assert cond.dtype == "bool" and then.dtype == other.dtype

        def compute(feed):
            return np.where(cond.evaluate(feed), then.evaluate(feed), other.evaluate(feed))

        return self._layer(FakeTensor(then.dtype, compute, then.shape))

    def add_identity(self, source: FakeTensor) -> FakeLayer:
        """Identity layer (one per network output)."""
        layer = self._layer(FakeTensor(source.dtype, source.evaluate, source.shape))
        self.identities.append(layer)
        return layer

    def mark_output(self, tensor: FakeTensor) -> None:
        """Mark a named tensor as a network output (names unique, none an input's)."""
        assert tensor.name, "outputs must be named before they are marked"
        taken = {t.name for t in self.inputs + self.outputs}
        assert tensor.name not in taken, f"tensor name {tensor.name} is already used"
        self.outputs.append(tensor)

    def run(self, feed: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """Evaluate every output; the feed must name exactly the inputs."""
        assert sorted(feed) == sorted(t.name for t in self.inputs), sorted(feed)
        self.read.clear()
        return {tensor.name: tensor.evaluate(feed) for tensor in self.outputs}


class FakeProfile:
    """Optimisation profile: records set_shape."""

    def __init__(self) -> None:
        self.shapes = {}

    def set_shape(self, name: str, low, opt, high) -> None:
        """Record one input's min/opt/max shapes."""
        self.shapes[name] = (tuple(low), tuple(opt), tuple(high))


class FakeConfig:
    """Builder config: records flags, workspace and profiles."""

    def __init__(self, api) -> None:
        self.flags: List[str] = []
        self.profiles: List[FakeProfile] = []
        self.pool_limits = {}
        if api.LEGACY:
            self.max_workspace_size = 0
        else:
            self.set_memory_pool_limit = self.pool_limits.__setitem__

    def set_flag(self, flag: str) -> None:
        """Record a builder flag."""
        self.flags.append(flag)

    def add_optimization_profile(self, profile: FakeProfile) -> int:
        """Record a profile."""
        self.profiles.append(profile)
        return len(self.profiles) - 1


class FakeBuilder:
    """Builder: hands out networks and configs, "builds" fixed bytes."""

    def __init__(self, api) -> None:
        self.api, self.network_flags, self.networks, self.configs = api, [], [], []
        if api.LEGACY:
            self.build_engine = self._build_engine
        else:
            self.build_serialized_network = self._build

    def create_network(self, flags: int = 0) -> FakeNetwork:
        """A new network; records the creation flags."""
        self.network_flags.append(flags)
        self.networks.append(FakeNetwork(self.api))
        return self.networks[-1]

    def create_builder_config(self) -> FakeConfig:
        """A new builder config."""
        self.configs.append(FakeConfig(self.api))
        return self.configs[-1]

    def create_optimization_profile(self) -> FakeProfile:
        """A new optimisation profile."""
        return FakeProfile()

    def _build(self, network, config):
        if self.api.PLAN_BYTES is not None:
            self.api.plans[self.api.PLAN_BYTES] = network
        return self.api.PLAN_BYTES

    def _build_engine(self, network, config):
        plan = self._build(network, config)
        return None if plan is None else types.SimpleNamespace(serialize=lambda: plan)


class FakeContext:
    """Execution context: input shapes, tensor addresses, a synchronous execution."""

    def __init__(self, engine: "FakeEngine") -> None:
        self.engine = engine
        self.shapes: Dict[str, tuple] = {}
        self.addresses: Dict[str, int] = {}
        self.streams: List[int] = []

    def set_input_shape(self, name: str, shape) -> bool:
        """Accept a shape of the declared rank that fixes every -1 dim; False otherwise."""
        declared, shape = self.engine.tensor(name).shape, tuple(shape)
        fits = len(shape) == len(declared) and all(d in (-1, s) for d, s in zip(declared, shape, strict=True))
        if fits:
            self.shapes[name] = shape
        return fits

    def set_tensor_address(self, name: str, address: int) -> bool:
        """Bind a tensor to a device address (an int, as in TensorRT's Python API)."""
        assert isinstance(address, int) and name in self.engine.names, (name, address)
        self.addresses[name] = address
        return True

    def _zeros(self) -> Dict[str, np.ndarray]:
        return {t.name: np.zeros(self.shapes[t.name], t.dtype) for t in self.engine.network.inputs}

    def get_tensor_shape(self, name: str) -> tuple:
        """An output's shape once every input shape is set (-1 dims before)."""
        if set(self.shapes) != {t.name for t in self.engine.network.inputs}:
            return (-1,)
        return self.engine.network.run(self._zeros())[name].shape

    def execute_async_v3(self, stream_handle: int) -> bool:
        """Evaluate the network from the bound device buffers into the output buffers."""
        assert stream_handle, "run on a created stream, not the default one"
        memory, network = self.engine.api.device, self.engine.network
        feed = {}
        for tensor in network.inputs:
            assert tensor.name in self.shapes, f"input {tensor.name} has no shape set"
            shape, dtype = self.shapes[tensor.name], np.dtype(tensor.dtype)
            data = memory.read(self.addresses[tensor.name], int(np.prod(shape)) * dtype.itemsize)
            feed[tensor.name] = np.frombuffer(data, dtype).reshape(shape)
        for name, value in network.run(feed).items():
            array = np.ascontiguousarray(value, self.engine.tensor(name).dtype)
            memory.write(self.addresses[name], array.tobytes())
        self.streams.append(stream_handle)
        return True


class FakeEngine:
    """A deserialized plan: the recorded network's I/O, inputs first."""

    def __init__(self, api, network: FakeNetwork) -> None:
        self.api, self.network = api, network
        self.names = [t.name for t in network.inputs + network.outputs]
        self.num_io_tensors = len(self.names)
        self.contexts: List[FakeContext] = []

    def tensor(self, name: str) -> FakeTensor:
        """The network input or output of that name."""
        (tensor,) = [t for t in self.network.inputs + self.network.outputs if t.name == name]
        return tensor

    def get_tensor_name(self, index: int) -> str:
        """I/O tensor name by index."""
        return self.names[index]

    def get_tensor_mode(self, name: str) -> str:
        """INPUT or OUTPUT."""
        inputs = {t.name for t in self.network.inputs}
        return self.api.TensorIOMode.INPUT if name in inputs else self.api.TensorIOMode.OUTPUT

    def get_tensor_dtype(self, name: str) -> str:
        """The tensor's dtype (a numpy dtype name, see `nptype`)."""
        return self.tensor(name).dtype

    def create_execution_context(self) -> FakeContext:
        """A new execution context."""
        self.contexts.append(FakeContext(self))
        return self.contexts[-1]


class FakeRuntime:
    """Deserializes only the bytes a fake builder of the same module returned."""

    def __init__(self, api, logger) -> None:
        self.api = api

    def deserialize_cuda_engine(self, data: bytes) -> Optional[FakeEngine]:
        """The engine over the network those bytes were built from, or None."""
        network = self.api.plans.get(bytes(data))
        return None if network is None else FakeEngine(self.api, network)


class FakeWeights:
    """Holds a numpy array, as trt.Weights does."""

    def __init__(self, array: np.ndarray) -> None:
        self.array = array


def _names(*members: str) -> types.SimpleNamespace:
    return types.SimpleNamespace(**{m: m for m in members})


def make(api: str = "10", plan: Optional[bytes] = b"fake plan", device=None) -> types.ModuleType:
    """A fake `tensorrt` module of one API shape ("8", "10", "11", "11-compat").

    `device` (a `tests.fake_cuda.DeviceMemory`) is the memory its engines run on.
    """
    trt = types.ModuleType("tensorrt")
    trt.__version__ = {"8": "8.6.1", "10": "10.5.0"}.get(api, "11.4.0")
    trt.LEGACY = api == "8"
    trt.LAYERS_HAVE_SET_OUTPUT_TYPE = api in ("8", "10", "11-compat")
    trt.PLAN_BYTES = plan
    trt.plans = {}  # plan bytes -> the network they were built from
    trt.device = device
    trt.probes = []
    trt.builders = []
    flags = ["TF32", "DEBUG"]
    if api in ("8", "10"):
        flags += ["FP16", "INT8", "DIRECT_IO", "PREFER_PRECISION_CONSTRAINTS",
                  "OBEY_PRECISION_CONSTRAINTS", "REJECT_EMPTY_ALGORITHMS"]
    trt.BuilderFlag = _names(*flags)
    creation = ["EXPLICIT_BATCH"] if api in ("8", "10") else []
    trt.NetworkDefinitionCreationFlag = types.SimpleNamespace(
        **{name: bit for bit, name in enumerate(creation + ["STRONGLY_TYPED"])})
    trt.MemoryPoolType = _names("WORKSPACE")
    trt.ElementWiseOperation = _names(*_NUMPY_OPS)
    trt.UnaryOperation = _names("NOT")
    trt.TensorFormat = types.SimpleNamespace(LINEAR=0)
    trt.float32, trt.int32, trt.bool = "float32", "int32", "bool"
    trt.Weights = FakeWeights
    trt.TensorIOMode = _names("INPUT", "OUTPUT")
    trt.nptype = lambda dtype: np.dtype(dtype).type
    trt.Runtime = lambda logger: FakeRuntime(trt, logger)
    trt.Logger = type("Logger", (), {"WARNING": 2, "__init__": lambda self, level=2: None})

    def builder(logger):
        trt.builders.append(FakeBuilder(trt))
        return trt.builders[-1]

    trt.Builder = builder
    return trt
