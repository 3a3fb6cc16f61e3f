"""A simulation of Triton's sequence batcher and implicit state around one model.

Written from CONTRACT.md section 4 and the reference's section 4 (Triton
core's behaviour), not from the generators, so that the model-contract tests
check a generated model against what a real server would feed it. It
follows the known-bug catalogue (verification/catalogue.json): by default
it behaves as released Triton does, every catalogued bug present; `fixed`
names the entries to run as a fixed Triton would (`FIXED_TRITON`: all of
them, the contract's own world):

- every `state` entry of the config gets its own buffer per sequence,
  created at START (or when a slot has none) as `verification.triton_sim_state`
  describes: zeros, the entry's initial-state file, or garbage; string
  states zeroed as core does, and a string state file whose size is not a
  multiple of 4 failing every sequence start with core's error
  (`SequenceStateError`);
- an initial state whose own dims differ from the state's start shape (a
  variable state) starts as that shape over the whole file, so backends read
  its first values only and the tensorflow backend refuses the request for
  its byte size (entry 6538; fixed: the initial state's own dims);
- backends that call StateUpdate (onnxruntime, tensorrt, pytorch) turn each
  request's state outputs (OUTPUT_STATE, ...) into the next request's state
  inputs, shape included, pairing an output with the input at its position
  in sorted name order as core does (entry 8586; fixed: the config's own
  pairs); python and tensorflow never do, so each state input keeps its
  start-of-sequence value;
- controls take the values of the config's `*_false_true` fields, CORRID the
  sequence id in its configured type;
- the direct strategy pads each execution with null requests (random data,
  READY 0, CORRID 0, a throw-away state) up to the highest slot with work and
  only batches requests whose client input shapes match; the oldest strategy
  sends real requests only, READY always 1;
- as in released Triton, implicit states are not compared when a batch is
  formed: a batch may hold differently shaped states, which the backend
  collects into a misread or failing tensor (`triton_sim_state.collect_state`; entry
  ragged-state-batch, fixed: only equal state shapes share an execution);
- a scalar state (dims []) gets buffers holding no bytes, its null requests'
  too (entry 3901, measured on 2.51: onnxruntime fails every request with
  "not enough space: expected <4 x rows>, got 0", the pytorch and tensorflow
  backends read uninitialized memory, the python backend hands the model
  zeros; a state the backend hands back is whole again. Fixed: a whole
  buffer);
- the pytorch backend refuses a model output without dimensions (what a
  non-batching model returns for a scalar state): "output '<name>' is a
  scalar which is not supported." (measured on 2.51; entry
  pytorch-scalar-output, fixed: such an output is taken, and handed back as
  a state without dimensions);
- `use_same_buffer_for_input_output` changes nothing (measured on 2.51 with
  the onnxruntime, pytorch, python and tensorflow backends: the contract's
  answers, batched and not);
- every numeric state type (TYPE_BF16 as `ml_dtypes.bfloat16`), and a state
  of another dtype or dims than INPUT's (each buffer has the state entry's
  own type and shape);
- `served_config` is the model configuration as Triton's HTTP endpoint
  renders it (verification/served_config.py; entry
  config-initial-state-dims, fixed: initial-state dims as numbers);
- Triton's own request errors are raised as `TritonError`.

A runner is any callable taking every model input by name (batched when
max_batch_size > 0) and returning at least OUTPUT and every state output.
"""

import dataclasses
import pathlib
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Tuple, Union

import numpy as np
from tritonclient.grpc import model_config_pb2 as mc

from generators.model_config import parse_config
from verification import catalogue, served_config
from verification.triton_sim_state import (  # noqa: F401 - errors, parse_bytes_tensor re-exported
    SHORT_STATE,
    Garbage,
    SequenceStateError,
    SimError,
    TritonError,
    collect_state,
    hand_back,
    numpy_type,
    parse_bytes_tensor,
    state_entries,
)

Runner = Callable[[Dict[str, np.ndarray]], Mapping[str, np.ndarray]]
Value = Union[int, float, Iterable]

_CONTROL_TYPES = {
    "int32_false_true": np.int32, "fp32_false_true": np.float32, "bool_false_true": np.bool_,
}
# Platforms / backends whose Triton backend calls TRITONBACKEND_StateUpdate.
_STATE_UPDATING = frozenset({
    "onnxruntime_onnx", "onnxruntime", "tensorrt_plan", "tensorrt",
    "pytorch_libtorch", "pytorch", "torch_aoti",
})
# The catalogue entries the simulation follows; `fixed` may name any of them.
NAME_ORDER = "8586"
INITIAL_DIMS = "6538"
RAGGED_BATCH = "ragged-state-batch"
CONFIG_DIMS = "config-initial-state-dims"
SCALAR_STATE = "3901"
SCALAR_OUTPUT = "pytorch-scalar-output"
SIMULATED = (NAME_ORDER, INITIAL_DIMS, RAGGED_BATCH, CONFIG_DIMS, SCALAR_STATE, SCALAR_OUTPUT)
# A Triton with every simulated bug fixed: what the contract describes.
FIXED_TRITON = frozenset(SIMULATED)
# Backends that refuse a request whose state bytes differ from its shape's
# (a state holding no bytes at all passes unchecked: measured on 2.51).
_BYTE_SIZE_CHECKED = frozenset({"tensorflow_savedmodel", "tensorflow"})
# Backends that refuse a model output without dimensions (entry pytorch-scalar-output).
_NO_SCALAR_OUTPUTS = frozenset({"pytorch_libtorch", "pytorch"})
_CTRL = mc.ModelSequenceBatching.Control
_FLAG_OF_KIND = {
    _CTRL.CONTROL_SEQUENCE_START: "start", _CTRL.CONTROL_SEQUENCE_END: "end",
    _CTRL.CONTROL_SEQUENCE_READY: "ready",
}


class ModelOutputError(SimError):
    """The model's outputs are missing or not shaped as Triton requires."""

    def __init__(self, message: str) -> None:
        super().__init__(f"model output: {message}")


@dataclasses.dataclass(frozen=True)
class Response:
    """What one request got back, with every state output kept for inspection.

    `states` maps each state entry's output name (OUTPUT_STATE, ...) to its
    value, in config order; `output_state` is the first entry's.
    """

    output: np.ndarray
    states: Mapping[str, np.ndarray]

    @property
    def output_state(self) -> np.ndarray:
        """The first state entry's output (OUTPUT_STATE)."""
        return next(iter(self.states.values()))


@dataclasses.dataclass
class _Row:
    """One row of an execution: a real request or a null (padding) one."""

    data: np.ndarray
    states: Tuple[np.ndarray, ...]  # one buffer per state entry, config order
    held: Tuple[int, ...] = ()  # elements each state buffer really holds
    start: bool = False
    end: bool = False
    ready: bool = False
    corrid: int = 0


@dataclasses.dataclass
class _Sequence:
    """A live sequence: its slot, one state buffer per state entry and the elements each holds."""

    slot: Tuple[int, int]  # (seq_slot, instance)
    states: Tuple[np.ndarray, ...]
    held: Tuple[int, ...]


def _state_shapes(row: "_Row") -> Tuple[Tuple[int, ...], ...]:
    """The shapes of a row's state buffers."""
    return tuple(state.shape for state in row.states)


def _parse_flags(flags: str) -> Tuple[bool, bool]:
    """(start, end) from a flags string such as "start end"."""
    words = set(flags.replace(",", " ").split())
    if not words <= {"start", "end"}:
        raise ValueError(f"flags {flags!r} may only contain 'start' and 'end'")
    return "start" in words, "end" in words


class SequenceBatcherSim:
    """Triton's sequence batcher, implicit state and controls around a runner."""

    def __init__(self, model_dir: pathlib.Path, runner: Runner, *, instances: int = 1,
                 updates_state: Optional[bool] = None, seed: int = 0,
                 fixed: Iterable[str] = ()) -> None:
        """Read model_dir/config.pbtxt; `updates_state` defaults from the platform.

        `fixed` names the catalogue entries (SIMULATED) to run as a fixed
        Triton would; the others behave as released Triton does.

        Raises:
            catalogue.CatalogueError: an id not in the catalogue, or one the
                simulation does not follow.
        """
        self.fixed = frozenset(catalogue.parse_ids(",".join(fixed), catalogue.load()))
        unsimulated = sorted(self.fixed - set(SIMULATED))
        if unsimulated:
            raise catalogue.CatalogueError(
                f"fixed={unsimulated}: the simulation follows only {', '.join(SIMULATED)}")
        self.model_dir = pathlib.Path(model_dir)
        self.config = parse_config((self.model_dir / "config.pbtxt").read_text())
        self._runner = runner
        self._garbage = Garbage(seed)
        batching = self.config.sequence_batching
        self.batched = self.config.max_batch_size > 0
        self.oldest = batching.WhichOneof("strategy_choice") == "oldest"
        if updates_state is None:
            updates_state = (self.config.platform or self.config.backend) in _STATE_UPDATING
        self.updates_state = updates_state
        platform = self.config.platform or self.config.backend
        self._short_state = SHORT_STATE.get(platform, "")
        self._no_scalar_outputs = (platform in _NO_SCALAR_OUTPUTS
                                   and SCALAR_OUTPUT not in self.fixed)
        self.state_entries = state_entries(self.config, self.model_dir)
        self._hand_back = hand_back(self.state_entries, NAME_ORDER not in self.fixed)
        self._byte_size_checked = platform in _BYTE_SIZE_CHECKED
        self._data_type = numpy_type(self.config.input[0].data_type)
        slots = batching.oldest.max_candidate_sequences if self.oldest else max(
            1, self.config.max_batch_size)
        instances = 1 if self.oldest else instances
        self._free = sorted((slot, inst) for slot in range(slots) for inst in range(instances))
        self._live: Dict[int, _Sequence] = {}
        self.executions: List[int] = []

    def served_config(self) -> dict:
        """The model's configuration as Triton's HTTP endpoint returns it (JSON as a dict)."""
        return served_config.render(self.config, dims_as_strings=CONFIG_DIMS not in self.fixed)

    def _fresh_states(self) -> Tuple[Tuple[np.ndarray, ...], Tuple[int, ...]]:
        """The buffers a slot gets at START, one per state entry, and the elements each holds."""
        honor = INITIAL_DIMS in self.fixed
        states = tuple(entry.fresh(self._garbage, honor) for entry in self.state_entries)
        held = tuple(entry.fresh_elements(state, self._empty_scalars)
                     for entry, state in zip(self.state_entries, states, strict=True))
        return states, held

    @property
    def _empty_scalars(self) -> bool:
        """Whether a scalar state's buffers hold no bytes (released Triton, entry 3901)."""
        return SCALAR_STATE not in self.fixed

    def _data(self, value: Value, batch_size: int) -> np.ndarray:
        """INPUT as a client sends it: every element `value` (strings: decimal)."""
        array = np.asarray(value)
        dims = list(self.config.input[0].dims)
        if array.ndim == 0:
            array = np.full([1 if d == -1 else d for d in dims], value)
        if array.ndim != len(dims) or any(
                d not in (-1, n) for d, n in zip(dims, array.shape, strict=True)):
            raise ValueError(f"value shape {array.shape} does not fit dims {dims}")
        if self._data_type is np.object_:
            array = np.vectorize(lambda v: str(v).encode(), otypes=[object])(array)
        else:
            array = array.astype(self._data_type)
        if self.batched:
            array = np.repeat(array[np.newaxis], batch_size, axis=0)
        elif batch_size != 1:
            raise ValueError("a non-batching model takes no batch size")
        return array

    def _check(self, corrid: int, start: bool, batch_size: int) -> None:
        """Raise the error Triton returns for an invalid sequence request."""
        model = self.config.name
        if self.batched and batch_size != 1:
            raise TritonError(f"inference request to model '{model}' must specify batch-size 1"
                              " due to requirements of sequence batcher")
        if corrid == 0:
            raise TritonError(f"inference request to model '{model}' must specify a non-zero"
                              " or non-empty correlation ID")
        if not start and corrid not in self._live:
            raise TritonError(f"inference request for sequence {corrid} to model '{model}' must"
                              " specify the START flag on the first request of the sequence")

    def _admit(self, corrid: int, start: bool) -> _Sequence:
        """Give a new sequence a slot; START resets the state of a live one."""
        sequence = self._live.get(corrid)
        if sequence is None:
            if not self._free:
                raise SimError(f"no free sequence slot for {corrid}; backlogs are not simulated")
            states, held = self._fresh_states()  # may fail as core does; then no slot is taken
            sequence = _Sequence(slot=self._free.pop(0), states=states, held=held)
            self._live[corrid] = sequence
        elif start:
            sequence.states, sequence.held = self._fresh_states()
        return sequence

    def _release(self, corrid: int) -> None:
        """END: the sequence's slot becomes free and its state is dropped."""
        self._free.append(self._live.pop(corrid).slot)
        self._free.sort()

    def _control(self, kind: int, rows: List[_Row]) -> Optional[Tuple[str, np.ndarray]]:
        """The control input of `kind` for the rows, or None when undeclared."""
        for control_input in self.config.sequence_batching.control_input:
            control = control_input.control[0]
            if control.kind != kind:
                continue
            if kind == _CTRL.CONTROL_SEQUENCE_CORRID:
                dtype = np.dtype(numpy_type(control.data_type))
                # Triton copies the first itemsize bytes of the LE uint64 id.
                values = [np.array([r.corrid], "<u8").view(np.uint8)[:dtype.itemsize]
                          .view(dtype.newbyteorder("<"))[0] for r in rows]
            else:
                field = next(name for name in _CONTROL_TYPES if len(getattr(control, name)))
                dtype = np.dtype(_CONTROL_TYPES[field])
                false_true = list(getattr(control, field))
                values = [false_true[int(getattr(r, _FLAG_OF_KIND[kind]))] for r in rows]
            tensor = np.array(values, dtype=dtype).reshape((len(rows), 1) if self.batched else (1,))
            return control_input.name, tensor
        return None

    def _feed(self, rows: List[_Row]) -> Dict[str, np.ndarray]:
        """Every model input for the rows: data, each state and declared controls."""
        join = (lambda arrays: np.concatenate(arrays)) if self.batched else (lambda a: a[0])
        feed = {self.config.input[0].name: join([r.data for r in rows])}
        for index, entry in enumerate(self.state_entries):
            states = [r.states[index] for r in rows]
            held = [r.held[index] for r in rows]
            feed[entry.input_name] = collect_state(states, held, self._short_state, self._garbage,
                                                   self.batched)
            need, size = feed[entry.input_name].size, entry.dtype.itemsize
            if self._byte_size_checked and 0 < sum(held) != need:
                raise TritonError(f"unexpected total byte size {sum(held) * size} for input"
                                  f" '{entry.input_name}', expecting {need * size}")
        for kind in (_CTRL.CONTROL_SEQUENCE_START, _CTRL.CONTROL_SEQUENCE_END,
                     _CTRL.CONTROL_SEQUENCE_READY, _CTRL.CONTROL_SEQUENCE_CORRID):
            control = self._control(kind, rows)
            if control is not None:
                feed[control[0]] = control[1]
        return feed

    def _execute(self, rows: List[_Row]) -> List[Response]:
        """Run one (padded) batch; returns each row's slice of the outputs."""
        outputs = self._runner(self._feed(rows))
        self.executions.append(len(rows))
        state_names = [entry.output_name for entry in self.state_entries]
        for name in [self.config.output[0].name] + state_names:
            if name not in outputs:
                raise ModelOutputError(f"'{name}' missing; got {sorted(outputs)}")
            if self._no_scalar_outputs and np.ndim(outputs[name]) == 0:
                raise TritonError(f"output '{name}' is a scalar which is not supported.")
            if self.batched and outputs[name].shape[:1] != (len(rows),):
                raise ModelOutputError(f"'{name}' has shape {outputs[name].shape} for a batch"
                                       f" of {len(rows)}")
        if not self.batched:
            return [Response(np.asarray(outputs[self.config.output[0].name]),
                             {name: np.asarray(outputs[name]) for name in state_names})]
        return [Response(outputs[self.config.output[0].name][i:i + 1],
                         {name: outputs[name][i:i + 1] for name in state_names})
                for i in range(len(rows))]

    def _null(self, like: _Row) -> _Row:
        """A padding request shaped like `like`: random data, throw-away states.

        A scalar state's null buffer holds no bytes either in released Triton (entry 3901).
        """
        states = tuple(self._garbage(s.shape, s.dtype) for s in like.states)
        held = tuple(0 if entry.scalar and self._empty_scalars else state.size
                     for entry, state in zip(self.state_entries, states, strict=True))
        return _Row(data=self._garbage(like.data.shape, like.data.dtype), states=states, held=held)

    def _batches(self, rows: Dict[Tuple[int, int], _Row]) -> Iterable[List[_Row]]:
        """Group rows into executions as the configured strategy does."""
        pending = dict(sorted(rows.items()))
        while pending:
            first_key, first = next(iter(pending.items()))
            instance = first_key[1]
            same = [key for key, row in pending.items()
                    if row.data.shape == first.data.shape and key[1] == instance
                    and (RAGGED_BATCH not in self.fixed or _state_shapes(row) == _state_shapes(first))]
            if self.oldest:
                batch = [pending.pop(key) for key in same[:max(1, self.config.max_batch_size)]]
            else:
                top = max(slot for slot, inst in pending if inst == instance)
                batch = [pending.pop((slot, instance)) if (slot, instance) in same
                         else self._null(first) for slot in range(top + 1)]
            yield batch

    def _parse(self, corrid: int, request: Tuple) -> _Row:
        """Check one `(value[, flags[, batch_size]])` request and build its row."""
        request = tuple(request)
        flags = request[1] if len(request) > 1 else ""
        batch_size = request[2] if len(request) > 2 else 1
        start, end = _parse_flags(flags)
        self._check(corrid, start, batch_size)
        return _Row(data=self._data(request[0], batch_size), states=(), start=start,
                    end=end, ready=True, corrid=corrid)

    def step(self, requests: Mapping[int, Tuple]) -> Dict[int, Response]:
        """Run one scheduling round of `{corrid: (value, flags)}` requests.

        Flags is a string holding "start" and/or "end" (e.g. "start end"); an
        optional third element is the batch size. Every request is checked
        before any runs, as Triton rejects a bad request on arrival. Returns
        each sequence's response.
        """
        answers = self.step_each(requests)
        for answer in answers.values():
            if isinstance(answer, TritonError):
                raise answer
        return answers

    def step_each(self, requests: Mapping[int, Tuple]) -> Dict[int, Union[Response, "TritonError"]]:
        """`step`, with a failed execution's error as each of its requests' answer.

        As in Triton, an execution the backend fails fails every request in
        it, leaves their states as they were, and still ends the sequences
        whose request carried END. Requests Triton refuses on arrival
        (`_check`) still raise for the whole round.
        """
        parsed = [self._parse(corrid, request) for corrid, request in requests.items()]
        rows = {}
        for row in parsed:
            sequence = self._admit(row.corrid, row.start)
            row.states, row.held = sequence.states, sequence.held
            rows[sequence.slot] = row
        answers = {}
        for batch in self._batches(rows):
            try:
                responses = self._execute(batch)
            except TritonError as err:
                for row in (r for r in batch if r.corrid):
                    answers[row.corrid] = err
                    if row.end:
                        self._release(row.corrid)
                continue
            for row, response in zip(batch, responses, strict=True):
                if row.corrid:  # null requests (corrid 0) are discarded
                    answers[row.corrid] = self._finish(row, response)
        return {corrid: answers[corrid] for corrid in requests}

    def _finish(self, row: _Row, response: Response) -> Response:
        """Hand each state output back (when the backend does); free the slot at END."""
        if self.updates_state:
            sequence = self._live[row.corrid]
            sequence.states = tuple(
                np.array(response.states[self.state_entries[k].output_name], copy=True)
                for k in self._hand_back)
            sequence.held = tuple(state.size for state in sequence.states)
        if row.end:
            self._release(row.corrid)
        return response

    def infer(self, corrid: int, value: Value, *, start: bool = False, end: bool = False,
              batch_size: int = 1) -> Response:
        """Send one request of one sequence and run it alone."""
        flags = " ".join(name for name, on in (("start", start), ("end", end)) if on)
        return self.step({corrid: (value, flags, batch_size)})[corrid]

