"""TensorFlow SavedModel builder: one variant as `model.savedmodel/`.

Triton's tensorflow backend never calls TRITONBACKEND_StateUpdate, so on a
stock server INPUT_STATE never advances: it holds the initial value (zeros,
the data file) or uninitialized memory on every request. These models
therefore keep each sequence's running state inside the SavedModel, in a
hash table keyed by CORRID whose values are `tf.io.serialize_tensor`
of the state (so variable widths and strings work); a multi-state variant
has one such table per state pair. Per batch row and pair k (k = 0 for the
single INPUT_STATE pair):

- READY=0 (a null request): the row touches no stored state.
- START, or no stored state: the previous state is the initial value, read
  from the pair's state input when the variant has an initial state, else zero.
- otherwise the previous state is the stored one.
- the pair's state output = (k + 1) * INPUT + previous (a width-1 state
  broadcasts); strings add as decimal integers ("" counts as 0), a boolean
  state is the running XOR of INPUT, and an INPUT narrower than its state
  (int32 -> int64, float16 -> float32) is cast to the state's dtype first.
  TensorFlow has CPU kernels for every numeric dtype, so each sum is computed
  in the state's own dtype.
- OUTPUT = sum over the pairs of (k + 1) * their state outputs, so the pairs
  are told apart (OUTPUT = OUTPUT_STATE for one pair).
- a state shaped unlike INPUT [1]: dims [2] holds [running sum, step count],
  new = [S[0] + INPUT, S[1] + 1] and OUTPUT = sum + 100 * count; dims [] is a
  scalar running sum, OUTPUT = INPUT + S.
- END removes the key; any other ready row stores the new state.
- a sequence idle for twice max_sequence_idle_microseconds (Triton has
  reaped it by then) is forgotten, so abandoned sequences do not pile up.

Because the model ignores its state inputs except at START, it gives the
same answers on a backend that does update state. It also means a state that
Triton fills wrongly shows at START only: released Triton gives a scalar
state (dims []) a zero-byte buffer (server issue 3901), which the tensorflow
backend feeds unchecked, so such a sequence starts from uninitialized memory.

Stock-server I/O: the backend requires the serving signature to have exactly
config inputs + sequence controls (INPUT, START, END, READY, CORRID; states do
not count), yet it feeds every request input, each state input included, by
name, falling back to the raw tensor name when the signature lacks it. So
after saving, each signature placeholder `serving_default_<state input>` is
renamed to `<state input>` and dropped from the SignatureDef: the backend
validates five inputs and its `INPUT_STATE:0` feed reaches the model. Every
state output stays a signature output. `tf.saved_model.load` still sees every
input (it reads the object graph, not the SignatureDef).

Determinism: function names in `saved_model.pb` carry a process-wide counter,
so the worker builds each model in a forked child (`FORK_PER_MODEL`).
`fingerprint.pb` is recomputed from the final files with a uuid derived from
its content hashes instead of a random one.
"""

import hashlib
import pathlib
import sys
from types import CellType, CodeType, FunctionType
from typing import Dict, List, Sequence

import tensorflow as tf
from tensorflow.core.protobuf import fingerprint_pb2, saved_model_pb2
from tensorflow.python.saved_model import signature_serialization
from tensorflow.python.saved_model.pywrap_saved_model import fingerprinting

from generators.backends.savedmodel import quiet_device_init
from generators.build_options import BuildOptions
from generators.dtypes import dtype_info, family_info
from generators.errors import GeneratorError
from generators.model_config import IDLE_MICROSECONDS
from generators.variant import InitialState, StatePair, Variant

# Tells generators/generate_model.py to build each model in a forked child.
FORK_PER_MODEL = True
MODEL_DIR = "model.savedmodel"
SIGNATURE_KEY = "serving_default"
CONTROLS = ("START", "END", "READY")
# Triton reaps a sequence idle for max_sequence_idle_microseconds; the state
# of one that never sent END is forgotten after twice that (as python models do).
EVICT_AFTER_SECONDS = 2 * IDLE_MICROSECONDS / 1e6
# Config data types (generators/dtypes.py `config_type`) -> TensorFlow dtypes.
# Triton's tensorflow backend refuses TYPE_BF16 tensors at load, so the matrix
# builds no bfloat16 savedmodel (generators/served_types.py); the row stays so
# lifting that exclusion is all a backend with BF16 support needs.
_TF_DTYPES = {
    "TYPE_BOOL": tf.bool, "TYPE_INT8": tf.int8, "TYPE_INT16": tf.int16, "TYPE_INT32": tf.int32,
    "TYPE_INT64": tf.int64, "TYPE_UINT8": tf.uint8, "TYPE_UINT16": tf.uint16,
    "TYPE_UINT32": tf.uint32, "TYPE_UINT64": tf.uint64, "TYPE_FP16": tf.float16,
    "TYPE_BF16": tf.bfloat16, "TYPE_FP32": tf.float32, "TYPE_FP64": tf.float64,
    "TYPE_STRING": tf.string,
}
# `_state_sum_count` models: OUTPUT = running sum + SUM_COUNT_WEIGHT * step count.
SUM_COUNT_WEIGHT = 100


class StateTable(tf.saved_model.experimental.TrackableResource):
    """A hash table keyed by CORRID (int64); one per session.

    A bare hash-table resource under a fixed, per-variant name: TensorFlow
    would name an eager `MutableHashTable` after a process-wide counter, and
    its checkpoint support would add save/restore functions these tables do
    not need (they start empty on every load).
    """

    def __init__(self, table_name: str, value_dtype: tf.DType) -> None:
        """Remember the resource name and value type; the table is made lazily."""
        self._table_name = table_name
        self._value_dtype = value_dtype
        super().__init__()

    def _create_resource(self):
        return tf.raw_ops.MutableHashTableV2(
            shared_name=self._table_name, use_node_name_sharing=False,
            key_dtype=tf.int64, value_dtype=self._value_dtype,
        )

    def lookup(self, keys: tf.Tensor, default) -> tf.Tensor:
        """Stored values of keys; `default` where a key is absent."""
        return tf.raw_ops.LookupTableFindV2(
            table_handle=self.resource_handle, keys=keys,
            default_value=tf.constant(default, self._value_dtype),
        )

    def insert(self, keys: tf.Tensor, values: tf.Tensor) -> None:
        """Store (or overwrite) values under keys."""
        tf.raw_ops.LookupTableInsertV2(table_handle=self.resource_handle, keys=keys, values=values)

    def remove(self, keys: tf.Tensor) -> None:
        """Drop keys; absent keys are ignored."""
        tf.raw_ops.LookupTableRemoveV2(table_handle=self.resource_handle, keys=keys)

    def export(self):
        """Every (key, value) pair, as two tensors."""
        return tf.raw_ops.LookupTableExportV2(
            table_handle=self.resource_handle, Tkeys=tf.int64, Tvalues=self._value_dtype
        )


def _types(variant: Variant) -> Dict[str, tf.DType]:
    """TensorFlow dtypes of INPUT ("data"), the state and OUTPUT ("state"), the controls."""
    return {
        "data": _TF_DTYPES[dtype_info(variant.dtype).config_type],
        "state": _TF_DTYPES[dtype_info(variant.state_type).config_type],
        "control": tf.as_dtype(dtype_info(variant.dtype).control_numpy),
        "corrid": _TF_DTYPES[family_info(variant).corrid_type],
    }


def _batch_dims(variant: Variant) -> List:
    return [None] if variant.max_batch > 0 else []


def _data_dims(variant: Variant) -> List:
    return [None if d == -1 else d for d in variant.shape]


def _state_dims(variant: Variant) -> List:
    return [None if d == -1 else d for d in variant.state_layout]


def input_signature(variant: Variant) -> List[tf.TensorSpec]:
    """TensorSpecs of the serving function, in argument order.

    INPUT, one state input per pair, then START, END, READY and CORRID.
    """
    types = _types(variant)
    data = _batch_dims(variant) + _data_dims(variant)
    state = _batch_dims(variant) + _state_dims(variant)
    control = _batch_dims(variant) + [1]
    return [
        tf.TensorSpec(data, types["data"], name="INPUT"),
        *(tf.TensorSpec(state, types["state"], name=pair.input) for pair in variant.state_pairs),
        *(tf.TensorSpec(control, types["control"], name=name) for name in CONTROLS),
        tf.TensorSpec(control, types["corrid"], name="CORRID"),
    ]


def _as_int(strings: tf.Tensor) -> tf.Tensor:
    """Decimal strings to int64; the empty string (Triton's zeroed state) is 0."""
    return tf.strings.to_number(tf.where(strings == "", "0", strings), out_type=tf.int64)


def _accumulate(value: tf.Tensor, previous: tf.Tensor) -> tf.Tensor:
    """The new state from INPUT and the previous state, in the state's dtype.

    Strings add as decimal integers, a boolean state is the running XOR, and
    an INPUT narrower than its state (int32 -> int64, float16 -> float32) is
    cast to the state's dtype first. TensorFlow has CPU add kernels for
    every numeric dtype, bfloat16 and the unsigned ones included.
    """
    if value.dtype == tf.string:
        return tf.strings.as_string(_as_int(value) + _as_int(previous))
    if previous.dtype == tf.bool:
        return tf.math.logical_xor(value, previous)
    if value.dtype != previous.dtype:
        value = tf.cast(value, previous.dtype)
    return value + previous


def _scaled(value: tf.Tensor, pair_index: int) -> tf.Tensor:
    """(pair_index + 1) * value; pair 0 adds no op (single-state graphs stay unchanged)."""
    if pair_index == 0:
        return value
    return value * tf.constant(pair_index + 1, value.dtype)


class _Step:
    """One execution of a variant: the arithmetic of the module docstring.

    A plain object, not a `tf.Module` attribute: saving flattens module
    attributes, and every project class met there costs an uncached ABC walk
    in each forked child.
    """

    def __init__(self, variant: Variant, states: Sequence[StateTable], last_seen: StateTable):
        self.pairs = variant.state_pairs
        self.states = tuple(states)  # one table per state pair
        self.last_seen = last_seen
        self.batched = variant.max_batch > 0
        self.rank = len(variant.shape)
        self.seed_from_state = variant.initial_state is not InitialState.NONE
        self.state_type = _types(variant)["state"]
        # A fresh state without an initial state: width 1, broadcast against INPUT.
        self.seed_shape = [1] * self.rank
        self.output_shape = _batch_dims(variant) + _data_dims(variant)

    def seed(self, state: tf.Tensor, ready: tf.Tensor) -> tf.Tensor:
        """Each row's value of a fresh sequence: the pair's state input or zero."""
        if not self.seed_from_state:
            return tf.zeros([tf.shape(state)[0]] + self.seed_shape, self.state_type)
        return tf.where(_row_mask(ready, state), state, tf.zeros_like(state))

    def previous(self, seed_row, fresh_row, stored_row) -> tf.Tensor:
        """One row's previous state: its seed when fresh, else the stored one."""
        return tf.io.parse_tensor(
            tf.where(fresh_row, tf.io.serialize_tensor(seed_row), stored_row), self.state_type
        )

    def rows(self, value, seed, fresh, stored):
        """Per-row new state and its serialization; rows may differ in width."""

        def row(args):
            value_row, seed_row, fresh_row, stored_row = args
            previous = self.previous(seed_row, fresh_row, stored_row)
            new = _accumulate(value_row, tf.ensure_shape(previous, [None] * self.rank))
            return new, tf.io.serialize_tensor(new)

        row_spec = tf.TensorSpec([None] * self.rank, self.state_type)
        signature = (row_spec, tf.TensorSpec([], tf.string))
        return tf.map_fn(
            row, (value, seed, fresh, stored), fn_output_signature=signature, parallel_iterations=1
        )

    def forget(self, keys: tf.Tensor) -> None:
        """Drop sequences from every table."""
        for table in self.states:
            table.remove(keys)
        self.last_seen.remove(keys)

    def evict_idle(self, now: tf.Tensor) -> None:
        """Forget sequences idle longer than EVICT_AFTER_SECONDS (never ENDed)."""
        keys, seen = (tf.reshape(t, [-1]) for t in self.last_seen.export())
        self.forget(tf.boolean_mask(keys, now - seen > EVICT_AFTER_SECONDS))

    def outputs(self, news: List[tf.Tensor]) -> Dict[str, tf.Tensor]:
        """OUTPUT (sum over the pairs of (k + 1) * new_k) and each pair's state output."""
        news = [tf.ensure_shape(n if self.batched else n[0], self.output_shape) for n in news]
        total = news[0]
        for index, new in enumerate(news[1:], 1):
            total = total + _scaled(new, index)
        outputs = {"OUTPUT": tf.identity(total)}
        for pair, new in zip(self.pairs, news, strict=True):
            outputs[pair.output] = tf.identity(new)
        return outputs

    def run(self, INPUT, states, START, END, READY, CORRID):  # noqa: N803 - Triton's names
        """One batch: `states` holds each pair's state input, in config order."""
        value = INPUT if self.batched else INPUT[tf.newaxis]
        states = [s if self.batched else s[tf.newaxis] for s in states]
        start, end, ready = (tf.cast(tf.reshape(c, [-1]), tf.bool) for c in (START, END, READY))
        keys = _keys(tf.reshape(CORRID, [-1]))
        now = tf.timestamp()
        self.evict_idle(now)
        stored = [table.lookup(keys, "") for table in self.states]
        # Null rows carry garbage (maybe unparsable strings): compute on zeros.
        value = tf.where(_row_mask(ready, value), value, tf.zeros_like(value))
        news, serialized = [], []
        for index, (state, stored_k) in enumerate(zip(states, stored, strict=True)):
            fresh = start | ~ready | tf.equal(stored_k, "")
            new, text = self.rows(_scaled(value, index), self.seed(state, ready), fresh, stored_k)
            news.append(new)
            serialized.append(text)
        kept = tf.boolean_mask(keys, ready & ~end)
        for table, text in zip(self.states, serialized, strict=True):
            table.insert(kept, tf.boolean_mask(text, ready & ~end))
        self.last_seen.insert(kept, tf.fill(tf.shape(kept), now))
        self.forget(tf.boolean_mask(keys, ready & end))
        return self.outputs(news)

    def __call__(self, INPUT, INPUT_STATE, START, END, READY, CORRID):  # noqa: N803 - Triton's names
        """The serving function of a single-state model: OUTPUT and OUTPUT_STATE."""
        return self.run(INPUT, [INPUT_STATE], START, END, READY, CORRID)


class _ShapedStep(_Step):
    """The serving function of a model whose state has other dims than INPUT.

    State dims [2] (`_state_sum_count`): the state holds [running sum, step
    count]; new = [S[0] + X, S[1] + 1] and OUTPUT = new sum + SUM_COUNT_WEIGHT
    * new count. State dims [] (`_state_scalar`): new = S + X as a scalar and
    OUTPUT = X + S (shape [1]). INPUT is cast to the state's dtype first.
    """

    def __init__(self, variant: Variant, states: Sequence[StateTable], last_seen: StateTable):
        """As `_Step`, with the state's own dims."""
        super().__init__(variant, states, last_seen)
        self.sum_count = bool(variant.state_layout)
        self.seed_shape = list(variant.state_layout)
        self.state_shape = _batch_dims(variant) + self.seed_shape

    def combine(self, value_row: tf.Tensor, previous: tf.Tensor):
        """One row's OUTPUT (shape [1]) and new state (the state's dims)."""
        if value_row.dtype != self.state_type:
            value_row = tf.cast(value_row, self.state_type)
        if self.sum_count:
            new = previous + tf.concat([value_row, tf.ones([1], self.state_type)], 0)
            return new[:1] + tf.constant(SUM_COUNT_WEIGHT, self.state_type) * new[1:], new
        output = value_row + previous
        return output, tf.reshape(output, [])

    def rows(self, value, seed, fresh, stored):
        """Per-row (OUTPUT, new state) and the new state's serialization."""

        def row(args):
            value_row, seed_row, fresh_row, stored_row = args
            previous = self.previous(seed_row, fresh_row, stored_row)
            output, new = self.combine(value_row, tf.ensure_shape(previous, self.seed_shape))
            return (output, new), tf.io.serialize_tensor(new)

        signature = ((tf.TensorSpec([1], self.state_type),
                      tf.TensorSpec(self.seed_shape, self.state_type)),
                     tf.TensorSpec([], tf.string))
        return tf.map_fn(
            row, (value, seed, fresh, stored), fn_output_signature=signature, parallel_iterations=1
        )

    def outputs(self, news: List) -> Dict[str, tf.Tensor]:
        """OUTPUT and OUTPUT_STATE of the single state pair."""
        (output, new), = news
        if not self.batched:
            output, new = output[0], new[0]
        return {"OUTPUT": tf.identity(tf.ensure_shape(output, self.output_shape)),
                self.pairs[0].output: tf.identity(tf.ensure_shape(new, self.state_shape))}


class _MultiStep(_Step):
    """The serving function of a multi-state model: one state input per pair.

    Its own class so the single-state function keeps its argument list, and
    with it its bytes; the arguments follow `input_signature`.
    """

    def __call__(self, *tensors):
        """OUTPUT and every state output of one batch."""
        count = len(self.pairs)
        value, states, controls = tensors[0], tensors[1:1 + count], tensors[1 + count:]
        return self.run(value, states, *controls)


class SequenceModel(tf.Module):
    """What gets saved: the state tables, the last-seen table and the serving function.

    Pair 0's table is the attribute `states`, pair k's (k >= 1) `states_<k>`,
    so a single-state model's object graph is unchanged by multi-state support.
    """

    def __init__(self, variant: Variant) -> None:
        """Create the tables and the (not yet traced) serving function."""
        super().__init__(name="sequence_model")
        digest = hashlib.sha256(variant.to_json().encode()).hexdigest()[:16]
        tables = []
        for index in range(len(variant.state_pairs)):
            suffix = f"_{index}" if index else ""
            table = StateTable(f"sequence_state_{variant.name}_{digest}{suffix}", tf.string)
            setattr(self, f"states{suffix}", table)
            tables.append(table)
        self.last_seen = StateTable(f"sequence_seen_{variant.name}_{digest}", tf.float64)
        if variant.multi_state:
            step_class = _MultiStep
        elif variant.state_dims is not None:
            step_class = _ShapedStep
        else:
            step_class = _Step
        step = step_class(variant, tables, self.last_seen)
        self.serve = tf.function(step, input_signature=input_signature(variant), autograph=False)


def _warm_abc_caches() -> None:
    """Answer saving's first isinstance(obj, CompositeTensor) checks now.

    The first answer for a class walks that ABC's whole subclass tree (about
    0.2 s per class); asked at import, forked children inherit the answers.
    Pure Python: the parent must run no TensorFlow op before forking.
    """
    for cls in (SequenceModel, StateTable, type(tf.function(len))):
        issubclass(cls, tf.__internal__.CompositeTensor)


def _warm_autograph_cache() -> None:
    """Convert TensorFlow's `signature_wrapper` closure with AutoGraph now, once.

    Saving traces that closure with AutoGraph, which converts it on first use
    (about 0.03 s per forked child, plus a temporary source file that the
    child's `os._exit` leaves behind) and caches the result by code object
    and options. `tf.autograph.to_graph` (tf.function's options) on a
    stand-in with the same code fills the cache for every child. Pure
    Python: no op runs and no function uid is taken, so no byte changes.
    """
    code = next((c for c in signature_serialization.canonicalize_signatures.__code__.co_consts
                 if isinstance(c, CodeType) and c.co_name == "signature_wrapper"), None)
    if code is None:  # another TensorFlow version: just slower
        return
    cells = tuple(CellType(None) for _ in code.co_freevars)
    # AutoGraph imports its generated source from the temp dir: no .pyc there.
    writes_bytecode, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        tf.autograph.to_graph(
            FunctionType(code, signature_serialization.__dict__, code.co_name, None, cells))
    finally:
        sys.dont_write_bytecode = writes_bytecode


_warm_abc_caches()
_warm_autograph_cache()


def _row_mask(flags: tf.Tensor, like: tf.Tensor) -> tf.Tensor:
    """Per-row flags [B] reshaped to broadcast against a [B, ...] tensor."""
    return tf.reshape(flags, tf.concat([[-1], tf.ones([tf.rank(like) - 1], tf.int32)], 0))


def _keys(corrid: tf.Tensor) -> tf.Tensor:
    """Table keys: the correlation id as int64 (uint64 bit pattern kept)."""
    if corrid.dtype == tf.uint64:
        return tf.bitcast(corrid, tf.int64)
    return tf.cast(corrid, tf.int64)


def _expose_state_input(meta_graph, name: str) -> None:
    """Rename the placeholder of state input `name` to `name`, off the SignatureDef."""
    old = f"{SIGNATURE_KEY}_{name}"
    if any(node.name == name for node in meta_graph.graph_def.node):
        raise GeneratorError(
            f"state input '{name}' clashes with a node of the saved graph; rename the state pair"
        )
    for node in meta_graph.graph_def.node:
        if node.name == old:
            node.name = name
        for index, source in enumerate(node.input):
            if source == old or source.startswith(old + ":"):
                node.input[index] = name + source[len(old):]
    signature_inputs = meta_graph.signature_def[SIGNATURE_KEY].inputs
    if name not in signature_inputs or not any(
        node.name == name for node in meta_graph.graph_def.node
    ):
        raise GeneratorError(
            f"TensorFlow {tf.__version__} saved no placeholder '{old}'; the state-input"
            " rename in generators/backends/savedmodel/savedmodel_builder.py needs updating for this version"
        )
    del signature_inputs[name]


def _expose_state_inputs(export_dir: pathlib.Path, pairs: Sequence[StatePair]) -> None:
    """Feed every state input by its raw name (module docstring, stock-server I/O)."""
    path = export_dir / "saved_model.pb"
    saved_model = saved_model_pb2.SavedModel.FromString(path.read_bytes())
    for pair in pairs:
        _expose_state_input(saved_model.meta_graphs[0], pair.input)
    path.write_bytes(saved_model.SerializeToString(deterministic=True))


def _write_fingerprint(export_dir: pathlib.Path) -> None:
    """Recompute fingerprint.pb from the final files, with a content-derived uuid."""
    fingerprint = fingerprint_pb2.FingerprintDef.FromString(
        fingerprinting.CreateFingerprintDef(str(export_dir))
    )
    fingerprint.ClearField("uuid")
    digest = hashlib.sha256(fingerprint.SerializeToString(deterministic=True)).digest()
    # Same form TensorFlow writes: a 128-bit number in decimal.
    fingerprint.uuid = str(int.from_bytes(digest[:16], "big"))
    (export_dir / "fingerprint.pb").write_bytes(fingerprint.SerializeToString(deterministic=True))


def write_model(variant: Variant, options: BuildOptions, version_dir: pathlib.Path) -> None:
    """Write `model.savedmodel/` into the version directory.

    Args:
        variant: the model to build (any dtype, shape, batching, initial state,
            state pairs).
        options: generator options (none apply to SavedModels).
        version_dir: existing, empty version directory (`<model>/1`).
    """
    del options  # ONNX-only options
    quiet_device_init.init_devices()  # before any op: no cuInit line where CUDA is absent
    export_dir = version_dir / MODEL_DIR
    model = SequenceModel(variant)
    tf.saved_model.save(model, str(export_dir), signatures={SIGNATURE_KEY: model.serve})
    _expose_state_inputs(export_dir, variant.state_pairs)
    # TensorFlow leaves an empty assets/ folder; empty folders do not survive a
    # Bazel remote-cache round trip, so drop it (rmdir fails if it has files).
    assets = export_dir / "assets"
    if assets.is_dir():
        assets.rmdir()
    _write_fingerprint(export_dir)

