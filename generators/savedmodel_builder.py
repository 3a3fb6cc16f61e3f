"""TensorFlow SavedModel builder: one variant as `model.savedmodel/`.

Triton's tensorflow backend never calls TRITONBACKEND_StateUpdate, so on a
stock server INPUT_STATE never advances: it holds the initial value (zeros,
the data file) or uninitialized memory on every request. These models
therefore keep each sequence's running state inside the SavedModel, in a
hash table keyed by CORRID whose values are `tf.io.serialize_tensor`
of the state (so variable widths and strings work). Per batch row:

- READY=0 (a null request): the row touches no stored state.
- START, or no stored state: the previous state is the initial value, read
  from INPUT_STATE when the variant has an initial state, else zero.
- otherwise the previous state is the stored one.
- OUTPUT = OUTPUT_STATE = INPUT + previous (a width-1 state broadcasts);
  strings add as decimal integers ("" counts as 0).
- END removes the key; any other ready row stores the new state.
- a sequence idle for twice max_sequence_idle_microseconds (Triton has
  reaped it by then) is forgotten, so abandoned sequences do not pile up.

Because the model ignores INPUT_STATE except at START, it gives the same
answers on a backend that does update state.

Stock-server I/O: the backend requires the serving signature to have exactly
config inputs + sequence controls (INPUT, START, END, READY, CORRID; states do
not count), yet it feeds every request input, INPUT_STATE included, by name,
falling back to the raw tensor name when the signature lacks it. So after
saving, the signature placeholder `serving_default_INPUT_STATE` is renamed to
`INPUT_STATE` and dropped from the SignatureDef: the backend validates five
inputs and its `INPUT_STATE:0` feed reaches the model. `tf.saved_model.load`
still sees all six inputs (it reads the object graph, not the SignatureDef).

Determinism: function names in `saved_model.pb` carry a process-wide counter,
so the worker builds each model in a forked child (`FORK_PER_MODEL`).
`fingerprint.pb` is recomputed from the final files with a uuid derived from
its content hashes instead of a random one.
"""

import hashlib
import pathlib
from typing import Dict, List

import tensorflow as tf
from tensorflow.core.protobuf import fingerprint_pb2, saved_model_pb2
from tensorflow.python.saved_model.pywrap_saved_model import fingerprinting

from generators.build_options import BuildOptions
from generators.dtypes import dtype_info, family_info
from generators.errors import GeneratorError, UnsupportedVariantError
from generators.model_config import IDLE_MICROSECONDS
from generators.variant import STATE_INPUT, STATE_OUTPUT, InitialState, Variant

# Tells generators/generate_model.py to build each model in a forked child.
FORK_PER_MODEL = True
MODEL_DIR = "model.savedmodel"
SIGNATURE_KEY = "serving_default"
CONTROLS = ("START", "END", "READY")
# Triton reaps a sequence idle for max_sequence_idle_microseconds; the state
# of one that never sent END is forgotten after twice that (as python models do).
EVICT_AFTER_SECONDS = 2 * IDLE_MICROSECONDS / 1e6
# numpy dtype names (generators/dtypes.py) -> TensorFlow dtypes.
_TF_DTYPES = {
    "float32": tf.float32,
    "int32": tf.int32,
    "object": tf.string,
    "bool": tf.bool,
    "uint64": tf.uint64,
}


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
    info = dtype_info(variant.dtype)
    corrid = family_info(variant).corrid_type.removeprefix("TYPE_").lower()
    return {
        "data": _TF_DTYPES[info.io_numpy],
        "control": _TF_DTYPES[info.control_numpy],
        "corrid": _TF_DTYPES[corrid],
    }


def _batch_dims(variant: Variant) -> List:
    return [None] if variant.max_batch > 0 else []


def _data_dims(variant: Variant) -> List:
    return [None if d == -1 else d for d in variant.shape]


def input_signature(variant: Variant) -> List[tf.TensorSpec]:
    """TensorSpecs of the serving function, in argument order."""
    types = _types(variant)
    data = _batch_dims(variant) + _data_dims(variant)
    control = _batch_dims(variant) + [1]
    return [
        tf.TensorSpec(data, types["data"], name="INPUT"),
        tf.TensorSpec(data, types["data"], name=STATE_INPUT),
        *(tf.TensorSpec(control, types["control"], name=name) for name in CONTROLS),
        tf.TensorSpec(control, types["corrid"], name="CORRID"),
    ]


def _as_int(strings: tf.Tensor) -> tf.Tensor:
    """Decimal strings to int64; the empty string (Triton's zeroed state) is 0."""
    return tf.strings.to_number(tf.where(strings == "", "0", strings), out_type=tf.int64)


def _accumulate(value: tf.Tensor, previous: tf.Tensor) -> tf.Tensor:
    if value.dtype == tf.string:
        return tf.strings.as_string(_as_int(value) + _as_int(previous))
    return value + previous


class _Step:
    """One execution of a variant: the arithmetic of the module docstring.

    A plain object, not a `tf.Module` attribute: saving flattens module
    attributes, and every project class met there costs an uncached ABC walk
    in each forked child.
    """

    def __init__(self, variant: Variant, states: StateTable, last_seen: StateTable) -> None:
        self.states = states
        self.last_seen = last_seen
        self.batched = variant.max_batch > 0
        self.rank = len(variant.shape)
        self.seed_from_state = variant.initial_state is not InitialState.NONE
        self.data_type = _types(variant)["data"]
        self.output_shape = _batch_dims(variant) + _data_dims(variant)

    def seed(self, state: tf.Tensor, ready: tf.Tensor) -> tf.Tensor:
        """Each row's value of a fresh sequence: INPUT_STATE or zero."""
        if not self.seed_from_state:
            return tf.zeros([tf.shape(state)[0]] + [1] * self.rank, self.data_type)
        return tf.where(_row_mask(ready, state), state, tf.zeros_like(state))

    def rows(self, value, seed, fresh, stored):
        """Per-row new state and its serialization; rows may differ in width."""

        def row(args):
            value_row, seed_row, fresh_row, stored_row = args
            previous = tf.io.parse_tensor(
                tf.where(fresh_row, tf.io.serialize_tensor(seed_row), stored_row), self.data_type
            )
            new = _accumulate(value_row, tf.ensure_shape(previous, [None] * self.rank))
            return new, tf.io.serialize_tensor(new)

        row_spec = tf.TensorSpec([None] * self.rank, self.data_type)
        signature = (row_spec, tf.TensorSpec([], tf.string))
        return tf.map_fn(
            row, (value, seed, fresh, stored), fn_output_signature=signature, parallel_iterations=1
        )

    def forget(self, keys: tf.Tensor) -> None:
        """Drop sequences from both tables."""
        self.states.remove(keys)
        self.last_seen.remove(keys)

    def evict_idle(self, now: tf.Tensor) -> None:
        """Forget sequences idle longer than EVICT_AFTER_SECONDS (never ENDed)."""
        keys, seen = (tf.reshape(t, [-1]) for t in self.last_seen.export())
        self.forget(tf.boolean_mask(keys, now - seen > EVICT_AFTER_SECONDS))

    def __call__(self, INPUT, INPUT_STATE, START, END, READY, CORRID):  # noqa: N803 - Triton's names
        """The serving function: OUTPUT and OUTPUT_STATE of one batch."""
        value = INPUT if self.batched else INPUT[tf.newaxis]
        state = INPUT_STATE if self.batched else INPUT_STATE[tf.newaxis]
        start, end, ready = (tf.cast(tf.reshape(c, [-1]), tf.bool) for c in (START, END, READY))
        keys = _keys(tf.reshape(CORRID, [-1]))
        now = tf.timestamp()
        self.evict_idle(now)
        stored = self.states.lookup(keys, "")
        # Null rows carry garbage (maybe unparsable strings): compute on zeros.
        value = tf.where(_row_mask(ready, value), value, tf.zeros_like(value))
        fresh = start | ~ready | tf.equal(stored, "")
        new, serialized = self.rows(value, self.seed(state, ready), fresh, stored)
        kept = tf.boolean_mask(keys, ready & ~end)
        self.states.insert(kept, tf.boolean_mask(serialized, ready & ~end))
        self.last_seen.insert(kept, tf.fill(tf.shape(kept), now))
        self.forget(tf.boolean_mask(keys, ready & end))
        new = tf.ensure_shape(new if self.batched else new[0], self.output_shape)
        return {"OUTPUT": tf.identity(new), STATE_OUTPUT: tf.identity(new)}


class SequenceModel(tf.Module):
    """What gets saved: the two tables and the serving function."""

    def __init__(self, variant: Variant) -> None:
        """Create the tables and the (not yet traced) serving function."""
        super().__init__(name="sequence_model")
        digest = hashlib.sha256(variant.to_json().encode()).hexdigest()[:16]
        self.states = StateTable(f"sequence_state_{variant.name}_{digest}", tf.string)
        self.last_seen = StateTable(f"sequence_seen_{variant.name}_{digest}", tf.float64)
        step = _Step(variant, self.states, self.last_seen)
        self.serve = tf.function(step, input_signature=input_signature(variant), autograph=False)


def _warm_abc_caches() -> None:
    """Answer saving's first isinstance(obj, CompositeTensor) checks now.

    The first answer for a class walks that ABC's whole subclass tree (about
    0.2 s per class); asked at import, forked children inherit the answers.
    Pure Python: the parent must run no TensorFlow op before forking.
    """
    for cls in (SequenceModel, StateTable, type(tf.function(len))):
        issubclass(cls, tf.__internal__.CompositeTensor)


_warm_abc_caches()


def _row_mask(flags: tf.Tensor, like: tf.Tensor) -> tf.Tensor:
    """Per-row flags [B] reshaped to broadcast against a [B, ...] tensor."""
    return tf.reshape(flags, tf.concat([[-1], tf.ones([tf.rank(like) - 1], tf.int32)], 0))


def _keys(corrid: tf.Tensor) -> tf.Tensor:
    """Table keys: the correlation id as int64 (uint64 bit pattern kept)."""
    if corrid.dtype == tf.uint64:
        return tf.bitcast(corrid, tf.int64)
    return tf.cast(corrid, tf.int64)


def _expose_state_input(export_dir: pathlib.Path) -> None:
    """Rename the INPUT_STATE placeholder to `INPUT_STATE`, off the SignatureDef."""
    path = export_dir / "saved_model.pb"
    saved_model = saved_model_pb2.SavedModel.FromString(path.read_bytes())
    meta_graph = saved_model.meta_graphs[0]
    old = f"{SIGNATURE_KEY}_{STATE_INPUT}"
    for node in meta_graph.graph_def.node:
        if node.name == old:
            node.name = STATE_INPUT
        for index, name in enumerate(node.input):
            if name == old or name.startswith(old + ":"):
                node.input[index] = STATE_INPUT + name[len(old):]
    signature_inputs = meta_graph.signature_def[SIGNATURE_KEY].inputs
    if STATE_INPUT not in signature_inputs or not any(
        node.name == STATE_INPUT for node in meta_graph.graph_def.node
    ):
        raise GeneratorError(
            f"TensorFlow {tf.__version__} saved no placeholder '{old}'; the INPUT_STATE"
            " rename in generators/savedmodel_builder.py needs updating for this version"
        )
    del signature_inputs[STATE_INPUT]
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
        variant: the model to build (any dtype, shape, batching, initial state).
        options: generator options (none apply to SavedModels).
        version_dir: existing, empty version directory (`<model>/1`).
    """
    del options  # ONNX-only options
    if getattr(variant, "multi_state", False):
        raise UnsupportedVariantError(
            f"savedmodel models keep one state (INPUT_STATE/OUTPUT_STATE); variant"
            f" '{variant.name}' asks for several state_pairs; drop state_pairs for savedmodel"
        )
    export_dir = version_dir / MODEL_DIR
    model = SequenceModel(variant)
    tf.saved_model.save(model, str(export_dir), signatures={SIGNATURE_KEY: model.serve})
    _expose_state_input(export_dir)
    # TensorFlow leaves an empty assets/ folder; empty folders do not survive a
    # Bazel remote-cache round trip, so drop it (rmdir fails if it has files).
    assets = export_dir / "assets"
    if assets.is_dir():
        assets.rmdir()
    _write_fingerprint(export_dir)

