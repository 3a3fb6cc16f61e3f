"""Model-contract tests: every generated model of one backend, driven like Triton would.

Each model of the backend named by CONTRACT_BACKEND (default "onnx") in the
built repositories (tests.repo_location) is wrapped in `verification.triton_sim`
with its runner from `tests/runners/<backend>_runner.py`, and sent the
sequences of Triton's QA clients (reference sections 7.2 and 7.4). Expected
values are the contract's literals (45, 10, 27, 51, ...); `expected_state`
and `expected_output` are the one place that adjusts them per family
(CONTRACT.md section 3) and per state pair (issue "Several implicit states
per model"). Every step's OUTPUT and every state output (OUTPUT_STATE,
OUTPUT_STATE_1, ...) is checked. Multi-state models also get the issue's
worked example as literals and a test that states leak neither between
pairs nor between interleaved sequences. How many models of the backend
each repository holds, multi-state ones included, is the literal table of
tests/expected_models.py, never a skip. The ONNX graphs themselves are
checked by onnx_graph_test.py.
"""

import functools
import json
import os
import pathlib
import unittest
import zlib
from typing import Callable, Dict, List, Tuple

import numpy as np

from generators.dtypes import family_info
from generators.variant import Backend, DType, InitialState, Variant
from tests import expected_models, repo_location
from tests.runners import load_runner
from verification import triton_sim

BACKEND = os.environ.get("CONTRACT_BACKEND", "onnx")
# The numpy dtype a client gets OUTPUT in (CONTRACT.md section 2: bool models carry int32).
OUTPUT_NUMPY = {DType.FLOAT32: np.float32, DType.INT32: np.int32, DType.OBJECT: np.object_,
                DType.BOOL: np.int32}
FILE_INITIAL_VALUE = 100  # what pair 0's file initial state holds (CONTRACT.md section 1)
# Nobatch models run with 4 instances, as upstream's trial 0 does.
NOBATCH_INSTANCES = 4

# A step is {corrid: (value, flags, running sum the contract expects)}.
Step = Dict[int, Tuple[object, str, int]]


def expected_state(variant: Variant, pair: int, running_sum: int, value: int) -> int:
    """State output of pair `pair` (k) for a step, from the plain running sum.

    Pair k computes new_k = (k + 1) * INPUT + S_k, with S_k its initial
    value at START (file: 100 * (k + 1); zero, or no initial state: 0) and
    the previous new_k afterwards; so new_k = (k + 1) * running sum + the
    initial value. The default single pair is k = 0: the running sum, plus
    100 with a numeric file initial state; strings as its decimal text, and a
    string state always starts empty (Triton core zeroes it), i.e. 0. ONNX
    string models are identities (upstream quirk the clients encode).
    """
    if variant.dtype is DType.OBJECT:
        # libtorch, python and savedmodel strings accumulate from an empty state.
        return value if variant.backend is Backend.ONNX else (pair + 1) * running_sum
    initial = FILE_INITIAL_VALUE * (pair + 1) if variant.initial_state is InitialState.FILE else 0
    return (pair + 1) * running_sum + initial


def expected_output(variant: Variant, running_sum: int, value: int) -> int:
    """OUTPUT for a step: the sum over the state pairs k of (k + 1) * `expected_state`."""
    return sum((k + 1) * expected_state(variant, k, running_sum, value)
               for k in range(len(variant.state_pairs)))


def state_outputs(variant: Variant) -> List[str]:
    """The config names of the state outputs, pair by pair.

    The state pairs' own names, except libtorch, whose pytorch backend needs
    `<name>__<tuple position>`: OUTPUT_STATE__1, then <output>__2, __3, ...
    (written out here, not taken from the generator, so a naming change fails).
    """
    if variant.backend is Backend.LIBTORCH:
        return [f"{pair.output}__{k + 1}" for k, pair in enumerate(variant.state_pairs)]
    return [pair.output for pair in variant.state_pairs]


def _flags(index: int, count: int) -> str:
    """Flags of step `index` of `count`: "start" on the first, "end" on the last."""
    return " ".join(f for f, on in (("start", index == 0), ("end", index == count - 1)) if on)


def sequence(corrid: int, values: List, sums: List[int]) -> List[Step]:
    """One sequence's steps: START on the first, END on the last."""
    pairs = enumerate(zip(values, sums, strict=True))
    return [{corrid: (v, _flags(i, len(values)), s)} for i, (v, s) in pairs]


def parallel(*sequences: List[Step]) -> List[Step]:
    """Sequences sent side by side: step i of each runs in one round."""
    rounds: List[Step] = []
    for steps in sequences:
        for index, step in enumerate(steps):
            if index == len(rounds):
                rounds.append({})
            rounds[index].update(step)
    return rounds


@functools.lru_cache(maxsize=None)
def _load_models() -> List[Tuple[Variant, pathlib.Path]]:
    """(variant, model dir) of every BACKEND model in the built repositories' manifest."""
    root = repo_location.implicit_repo((BACKEND,))
    manifest = json.loads((root / "manifest.json").read_text())
    models = [(Variant.from_spec(m["variant"]), root / m["repository"] / m["name"])
              for m in manifest["models"] if m["variant"]["backend"] == BACKEND]
    if not models:
        raise AssertionError(f"manifest under {root} lists no '{BACKEND}' models")
    return models


@functools.lru_cache(maxsize=None)
def _runner(path: pathlib.Path) -> triton_sim.Runner:
    """One runner per model for the whole test run (a runner may be slow to load)."""
    return load_runner(BACKEND, path)


class ContractTestCase(unittest.TestCase):
    """Shared set-up: the models of BACKEND and one cached runner per model."""

    @classmethod
    def setUpClass(cls) -> None:
        """Load every model once; `models` leaves out the initial-state dims reproducers.

        Those (InitialStateDimsContractTest) take width-3 sequences only: their
        state starts as the file's 3 values, which a width-1 INPUT does not fit.
        """
        cls.all_models = _load_models()
        cls.models = [(v, p) for v, p in cls.all_models if not v.initial_state_dims]
        cls.runners = {path: _runner(path) for _, path in cls.all_models}

    def simulate(self, variant: Variant, path: pathlib.Path,
                 fixed=triton_sim.FIXED_TRITON) -> triton_sim.SequenceBatcherSim:
        """A fresh server around one model (state and slots start empty).

        `fixed`: the contract is the world of a Triton with every catalogued
        bug fixed (the default); `test_released_triton_*` run one bug as
        released Triton has it (the simulation's default).
        """
        return triton_sim.SequenceBatcherSim(
            path, self.runners[path], seed=zlib.crc32(path.name.encode()),
            instances=1 if variant.max_batch else NOBATCH_INSTANCES, fixed=fixed)

    def check_tensor(self, variant: Variant, array: np.ndarray, value,
                     expected: Callable[[int], int]) -> None:
        """INPUT's shape and the I/O dtype; element i holds expected(INPUT element i)."""
        width = np.asarray(value).shape or (1,)
        shape = ((1,) if variant.max_batch else ()) + width
        self.assertEqual(array.shape, shape)
        self.assertEqual(array.dtype, OUTPUT_NUMPY[variant.dtype])
        wanted = np.broadcast_to(np.asarray(value), width).reshape(shape)
        for got, element in zip(array.ravel(), wanted.ravel(), strict=True):
            if variant.dtype is DType.OBJECT:
                self.assertEqual(got, str(int(got.decode())).encode(), "not a decimal string")
                got = int(got.decode())
            self.assertEqual(got, expected(int(element)))

    def check_response(self, variant: Variant, response: triton_sim.Response,
                       value, running_sum: int) -> None:
        """OUTPUT and each pair's state output hold the contract values."""
        outputs = state_outputs(variant)
        self.assertEqual(list(response.states), outputs)
        checks = [("OUTPUT", response.output, lambda x: expected_output(variant, running_sum, x))]
        checks += [(name, response.states[name],
                    lambda x, k=k: expected_state(variant, k, running_sum, x))
                   for k, name in enumerate(outputs)]
        for name, array, expected in checks:
            try:
                self.check_tensor(variant, array, value, expected)
            except AssertionError as err:
                raise AssertionError(f"{name}: {err}") from None

    def drive(self, variant: Variant, path: pathlib.Path, steps: List[Step]):
        """Send the steps round by round, checking every response; returns the sim.

        Stops at the first wrong response, naming its round and sequence.
        """
        sim = self.simulate(variant, path)
        for index, step in enumerate(steps):
            responses = sim.step({c: (v, f) for c, (v, f, _) in step.items()})
            for corrid, (value, _, running_sum) in step.items():
                try:
                    self.check_response(variant, responses[corrid], value, running_sum)
                except AssertionError as err:
                    raise AssertionError(
                        f"round {index}, sequence {corrid}, INPUT {value!r}: {err}") from None
        return sim

    def run_models(self, steps: List[Step], executions=None, only=lambda v: True) -> None:
        """Drive every selected model; `executions(variant)` gives expected batch sizes."""
        selected = [(v, p) for v, p in self.models if only(v)]
        self.assertTrue(selected, "no model of this backend fits the scenario")
        for variant, path in selected:
            with self.subTest(model=f"{path.parent.name}/{path.name}"):
                sim = self.drive(variant, path, steps)
                if executions is not None:
                    self.assertEqual(sim.executions, executions(variant))


class BuiltModelsTest(unittest.TestCase):
    """The built repositories hold exactly the table's models of this backend."""

    def test_models_per_repository(self):
        """Per repository, as many BACKEND models as tests/expected_models.py gives (0: none)."""
        built = expected_models.count((path.parent.name, variant.backend.value)
                                      for variant, path in _load_models())
        self.assertEqual(expected_models.mismatches(built, [BACKEND]), [])


def _batched(v: Variant) -> bool:
    """Whether the model has a batch dimension."""
    return v.max_batch > 0


class SequenceContractTest(ContractTestCase):
    """The upstream clients' sequences (L0_sequence_batcher, dyna) on every model."""

    def test_simple_sequence(self):
        """test_simple_sequence: 1..9 -> 45, one request per execution."""
        steps = sequence(5, list(range(1, 10)), [1, 3, 6, 10, 15, 21, 28, 36, 45])
        self.run_models(steps, lambda v: [1] * 9)

    def test_length1_sequence(self):
        """test_length1_sequence: one START+END request, 42 -> 42."""
        self.run_models(sequence(99, [42], [42]), lambda v: [1])

    def test_no_sequence_end(self):
        """A second START on a live sequence resets its state: 1, 2, 42 (start), 9 -> 51."""
        steps = [{4566: (1, "start", 1)}, {4566: (2, "", 3)}, {4566: (42, "start", 42)},
                 {4566: (9, "end", 51)}]
        self.run_models(steps, lambda v: [1] * 4)

    def test_end_then_new_start(self):
        """After END the id is free; a new START begins afresh: 1, 2 -> 3; 11111, 11113 -> 22224."""
        steps = sequence(1001, [1, 2], [1, 3]) + sequence(1001, [11111, 11113], [11111, 22224])
        self.run_models(steps, lambda v: [1] * 4)

    def test_half_batch(self):
        """test_half_batch: 987: 1,2,3,4 -> 10 and 988: 0,9,5,13 -> 27 side by side."""
        steps = parallel(sequence(987, [1, 2, 3, 4], [1, 3, 6, 10]),
                         sequence(988, [0, 9, 5, 13], [0, 9, 14, 27]))
        self.run_models(steps, lambda v: [2] * 4 if _batched(v) else [1] * 8)

    def test_full_batch(self):
        """test_full_batch: x+1, x+2, x+3 for x = 0, 10, 110, 1110 -> 6, 36, 336, 3336."""
        steps = parallel(sequence(1001, [1, 2, 3], [1, 3, 6]),
                         sequence(1002, [11, 12, 13], [11, 23, 36]),
                         sequence(1003, [111, 112, 113], [111, 223, 336]),
                         sequence(1004, [1111, 1112, 1113], [1111, 2223, 3336]))
        self.run_models(steps, lambda v: [4] * 3 if _batched(v) else [1] * 12)

    def test_skip_batch(self):
        """test_skip_batch: 1002 and 1004 first; the later two end early -> 4, 50, 224, 4450."""
        steps = parallel(sequence(1002, [11, 12, 13, 14], [11, 23, 36, 50]),
                         sequence(1004, [1111, 1112, 1113, 1114], [1111, 2223, 3336, 4450]),
                         sequence(1001, [1, 3], [1, 4]),
                         sequence(1003, [111, 113], [111, 224]))
        self.run_models(steps, lambda v: [4, 4, 2, 2] if _batched(v) else [1] * 12)

    def test_padding_between_live_slots(self):
        """Slots 0 and 2 end early: direct pads them with null requests, oldest does not."""
        steps = parallel(sequence(1001, [1, 3], [1, 4]),
                         sequence(1002, [11, 12, 13, 14], [11, 23, 36, 50]),
                         sequence(1003, [111, 113], [111, 224]),
                         sequence(1004, [1111, 1112, 1113, 1114], [1111, 2223, 3336, 4450]))

        def executions(v: Variant) -> List[int]:
            if not _batched(v):
                return [1] * 12
            return [4, 4, 2, 2] if v.dyna else [4] * 4

        self.run_models(steps, executions)

    def test_ragged_batch(self):
        """test_ragged_batch: widths 2, 2, 1, 3 accumulate element-wise -> 6, 36, 336, 3336."""
        steps = parallel(sequence(1001, [[1] * 2, [2] * 2, [3] * 2], [1, 3, 6]),
                         sequence(1002, [[11] * 2, [12] * 2, [13] * 2], [11, 23, 36]),
                         sequence(1003, [[111], [112], [113]], [111, 223, 336]),
                         sequence(1004, [[1111] * 3, [1112] * 3, [1113] * 3], [1111, 2223, 3336]))
        # Three shapes per round, each execution padded to 4 slots: upstream's {4: 9}.
        self.run_models(steps, lambda v: [4] * 9, only=lambda v: v.variable)

    def test_new_width_after_end(self):
        """A sequence restarted on the same id may change width: state shape resets too."""
        steps = sequence(1001, [[1, 1], [2, 2]], [1, 3]) + sequence(1001, [[5, 5, 5]], [5])
        self.run_models(steps, lambda v: [1] * 3, only=lambda v: v.variable)


class TritonErrorTest(ContractTestCase):
    """Requests Triton rejects before the model sees them (reference section 4.4)."""

    def for_each_model(self, check: Callable[[Variant, triton_sim.SequenceBatcherSim], None]):
        """Run `check(variant, fresh sim)` for every model, one subtest each."""
        for variant, path in self.models:
            with self.subTest(model=f"{path.parent.name}/{path.name}"):
                check(variant, self.simulate(variant, path))

    def test_batch_size(self):
        """test_batch_size: a batch of 2 on a batched model is refused."""
        def check(variant: Variant, sim: triton_sim.SequenceBatcherSim) -> None:
            if _batched(variant):
                with self.assertRaisesRegex(triton_sim.TritonError, "must specify batch-size 1"):
                    sim.infer(27, 1, start=True, batch_size=2)
        self.for_each_model(check)

    def test_no_correlation_id(self):
        """test_no_correlation_id: correlation id 0 is refused."""
        def check(_: Variant, sim: triton_sim.SequenceBatcherSim) -> None:
            with self.assertRaisesRegex(triton_sim.TritonError, "non-zero or non-empty"):
                sim.infer(0, 1, start=True)
        self.for_each_model(check)

    def test_no_sequence_start(self):
        """test_no_sequence_start: the first request of a sequence needs START."""
        def check(_: Variant, sim: triton_sim.SequenceBatcherSim) -> None:
            with self.assertRaisesRegex(triton_sim.TritonError,
                                        "sequence 37469245 .* must specify the START flag"):
                sim.infer(37469245, 1)
        self.for_each_model(check)

    def test_no_sequence_start2(self):
        """test_no_sequence_start2: after END, a request without START is refused."""
        def check(variant: Variant, sim: triton_sim.SequenceBatcherSim) -> None:
            outputs = [sim.infer(3, 1, start=True), sim.infer(3, 2), sim.infer(3, 3, end=True)]
            self.check_response(variant, outputs[-1], 3, 6)
            with self.assertRaisesRegex(triton_sim.TritonError, "sequence 3 .* START flag"):
                sim.infer(3, 55)
            self.assertEqual(sim.executions, [1, 1, 1])
        self.for_each_model(check)

    def test_state_update_matches_backend(self):
        """The generator's view of StateUpdate agrees with the backend Triton would use."""
        def check(variant: Variant, sim: triton_sim.SequenceBatcherSim) -> None:
            self.assertEqual(sim.updates_state, family_info(variant).updates_state)
        self.for_each_model(check)


NONE, FILE = InitialState.NONE, InitialState.FILE
# The worked example, INPUT 1, 2, 3, 4 with START on step 1 and END
# on step 4: (pair count, initial state) -> each pair's state per step, and OUTPUT.
WORKED_STATES = {
    (2, NONE): ([1, 3, 6, 10], [2, 6, 12, 20]),
    (2, FILE): ([101, 103, 106, 110], [202, 206, 212, 220]),
    (3, NONE): ([1, 3, 6, 10], [2, 6, 12, 20], [3, 9, 18, 30]),
    (3, FILE): ([101, 103, 106, 110], [202, 206, 212, 220], [303, 309, 318, 330]),
}
WORKED_OUTPUT = {(2, NONE): [5, 15, 30, 50], (2, FILE): [505, 515, 530, 550],
                 (3, NONE): [14, 42, 84, 140], (3, FILE): [1414, 1442, 1484, 1540]}
# Two interleaved sequences on a 3-pair model: 1 sends 1, 2, 3, 4; 2 sends 10,
# 20, then 5 with a new START (a reset while 1 goes on), then 6. Rounds 1 and 3
# hold one sequence only, so a batched model pads round 3 with a null request.
INTERLEAVED = [{1: (1, "start"), 2: (10, "start")}, {1: (2, "")}, {2: (20, ""), 1: (3, "")},
               {2: (5, "start")}, {1: (4, "end"), 2: (6, "end")}]
INTERLEAVED_STATES = {  # initial state -> corrid -> each pair's state per step
    NONE: {1: ([1, 3, 6, 10], [2, 6, 12, 20], [3, 9, 18, 30]),
           2: ([10, 30, 5, 11], [20, 60, 10, 22], [30, 90, 15, 33])},
    FILE: {1: ([101, 103, 106, 110], [202, 206, 212, 220], [303, 309, 318, 330]),
           2: ([110, 130, 105, 111], [220, 260, 210, 222], [330, 390, 315, 333])},
}
INTERLEAVED_OUTPUT = {NONE: {1: [14, 42, 84, 140], 2: [140, 420, 70, 154]},
                      FILE: {1: [1414, 1442, 1484, 1540], 2: [1540, 1820, 1470, 1554]}}
# Released Triton on the order repository (output names sorting in another
# order than the inputs): core updates the input at the output's position in
# sorted name order (server issue 8586), so each pair's new state feeds the
# next pair. OUTPUT of the worked example and of INTERLEAVED per pair count,
# worked by hand (2 pairs, step 2: new = (2 + 2, 4 + 1), OUTPUT 4 + 2 * 5 = 14).
NAME_ORDER_WORKED_OUTPUT = {2: [5, 14, 28, 46], 3: [14, 39, 75, 125]}
NAME_ORDER_INTERLEAVED_OUTPUT = {1: [14, 39, 75, 125], 2: [140, 390, 70, 139]}
# Families whose backend hands OUTPUT_STATE back to Triton (CONTRACT.md section 4).
STATE_HANDING = {Backend.ONNX, Backend.LIBTORCH, Backend.PLAN}
# Every catalogued bug fixed but core's pairing by name order (entry 8586).
RELEASED_PAIRING = triton_sim.FIXED_TRITON - {triton_sim.NAME_ORDER}


def _value(array: np.ndarray) -> int:
    """The single element of a one-element response tensor, as an int."""
    return int(array.reshape(-1)[0])


class MultiStateContractTest(ContractTestCase):
    """Several state pairs: the issue's worked example and state isolation, as literals."""

    def multi_state_models(self, pairs=(2, 3)) -> List[Tuple[Variant, pathlib.Path]]:
        """The multi-state models of this backend with one of the given pair counts.

        How many multi-state models the backend has is the literal table's
        (tests/expected_models.py), never the data under test: fewer (or
        more) built ones fail, and so does a table count with none of the
        asked pair counts among them.
        """
        multi = [(v, p) for v, p in self.models if v.multi_state]
        self.assertEqual(len(multi), expected_models.multi_state_count(BACKEND),
                         f"multi-state {BACKEND} models built vs tests/expected_models.py")
        models = [(v, p) for v, p in multi if len(v.state_pairs) in pairs]
        if multi:
            self.assertTrue(models, f"no {BACKEND} model with {pairs} state pairs")
        return models

    def test_rule_reproduces_the_worked_example(self):
        """`expected_state` / `expected_output` give the issue's literal sequences."""
        for (count, initial), states in WORKED_STATES.items():
            pairs = [(f"INPUT_STATE_{k}", f"OUTPUT_STATE_{k}") for k in range(count)]
            variant = Variant.from_spec({"backend": BACKEND, "dtype": "int32", "shape": [1],
                                         "max_batch": 8, "initial_state": initial.value,
                                         "state_pairs": pairs})
            sums = [1, 3, 6, 10]
            self.assertEqual([[expected_state(variant, k, s, 0) for s in sums]
                              for k in range(count)], list(states))
            self.assertEqual([expected_output(variant, s, 0) for s in sums],
                             WORKED_OUTPUT[(count, initial)])

    def test_worked_example(self):
        """INPUT 1..4: e.g. OUTPUT 3, 9, 18, 30 (2 pairs) or 606, 618, 636, 660 (3, file)."""
        for variant, path in self.multi_state_models():
            with self.subTest(model=f"{path.parent.name}/{path.name}"):
                key = (len(variant.state_pairs), variant.initial_state)
                sim = self.simulate(variant, path)
                responses = [sim.infer(7, x, start=x == 1, end=x == 4) for x in (1, 2, 3, 4)]
                self.assertEqual([_value(r.output) for r in responses], WORKED_OUTPUT[key])
                got = tuple([_value(r.states[name]) for r in responses]
                            for name in state_outputs(variant))
                self.assertEqual(got, WORKED_STATES[key])

    def test_states_do_not_leak(self):
        """Interleaved sequences on 3-pair models: each pair of each sequence keeps its own."""
        for variant, path in self.multi_state_models(pairs=(3,)):
            with self.subTest(model=f"{path.parent.name}/{path.name}"):
                sim = self.simulate(variant, path)
                outputs = {1: [], 2: []}
                states = {c: tuple([] for _ in variant.state_pairs) for c in outputs}
                for step in INTERLEAVED:
                    for corrid, response in sim.step(step).items():
                        outputs[corrid].append(_value(response.output))
                        for k, name in enumerate(state_outputs(variant)):
                            states[corrid][k].append(_value(response.states[name]))
                self.assertEqual(states, INTERLEAVED_STATES[variant.initial_state])
                self.assertEqual(outputs, INTERLEAVED_OUTPUT[variant.initial_state])
                batched = [2, 1, 2, 2, 2]  # round 3 padded: slot 0 idle below busy slot 1
                self.assertEqual(sim.executions, batched if variant.max_batch else [1] * 8)

    def test_released_triton_pairing(self):
        """Core's pairing by name order: only crossed names on state-handing families change.

        Every model whose output state names sort like its input names
        answers the contract; a crossed one (the order repository) answers
        the literal swapped sequence when its backend hands state back, and
        the contract when the model keeps its own state (python, savedmodel).
        """
        for variant, path in self.multi_state_models():
            with self.subTest(model=f"{path.parent.name}/{path.name}"):
                sim = self.simulate(variant, path, RELEASED_PAIRING)
                outputs = [_value(sim.infer(7, x, start=x == 1, end=x == 4).output)
                           for x in (1, 2, 3, 4)]
                swapped = variant.crossed_state_order and variant.backend in STATE_HANDING
                want = (NAME_ORDER_WORKED_OUTPUT[len(variant.state_pairs)] if swapped
                        else WORKED_OUTPUT[(len(variant.state_pairs), variant.initial_state)])
                self.assertEqual(outputs, want)

    def test_released_triton_interleaved(self):
        """Interleaved sequences under core's pairing: the swap follows each sequence apart."""
        crossed = [(v, p) for v, p in self.multi_state_models(pairs=(3,))
                   if v.crossed_state_order and v.backend in STATE_HANDING]
        if BACKEND in {b.value for b in STATE_HANDING}:
            self.assertTrue(crossed, f"no crossed 3-pair {BACKEND} model in {ORDER_REPOSITORY}")
        for variant, path in crossed:
            with self.subTest(model=f"{path.parent.name}/{path.name}"):
                sim = self.simulate(variant, path, RELEASED_PAIRING)
                outputs = {1: [], 2: []}
                for step in INTERLEAVED:
                    for corrid, response in sim.step(step).items():
                        outputs[corrid].append(_value(response.output))
                self.assertEqual(outputs, NAME_ORDER_INTERLEAVED_OUTPUT)

    def test_order_repository_has_crossed_names(self):
        """The order repository's models are crossed; the other multi-state models are not."""
        for variant, path in self.multi_state_models():
            with self.subTest(model=f"{path.parent.name}/{path.name}"):
                self.assertEqual(variant.crossed_state_order,
                                 path.parent.name == ORDER_REPOSITORY)


ORDER_REPOSITORY = "qa_multi_state_order_implicit_model_repository"
DIMS_REPOSITORY = "qa_initial_state_dims_implicit_model_repository"
# The dims reproducers' file initial state (dims [3]) and a width-3 sequence,
# INPUT 1, 2, 3 (running sums 1, 3, 6): the contract, and released Triton
# (server issue 6538: the first value only; the tensorflow backend refuses).
DIMS_CONTRACT = [[101, 201, 301], [103, 203, 303], [106, 206, 306]]
DIMS_RELEASED = [[101, 101, 101], [103, 103, 103], [106, 106, 106]]
DIMS_TENSORFLOW = "unexpected total byte size 12 for input 'INPUT_STATE', expecting 4"


class InitialStateDimsContractTest(ContractTestCase):
    """The initial-state dims reproducers: width-3 sequences from the file's three values."""

    def dims_models(self) -> List[Tuple[Variant, pathlib.Path]]:
        """This backend's reproducers: as many as tests/expected_models.py gives."""
        models = [(v, p) for v, p in self.all_models if v.initial_state_dims]
        self.assertEqual(len(models), expected_models.EXPECTED_MODELS[DIMS_REPOSITORY].get(BACKEND, 0))
        self.assertTrue(all(p.parent.name == DIMS_REPOSITORY for _, p in models))
        return models

    def outputs(self, sim) -> List:
        """OUTPUT of INPUT 1, 2, 3 at width 3, or the error a request got."""
        answers = []
        for x in (1, 2, 3):
            try:
                answers.append(sim.infer(1, [x] * 3, start=x == 1, end=x == 3).output.tolist()[0])
            except triton_sim.TritonError as err:
                answers.append(str(err))
        return answers

    def test_contract(self):
        """A Triton that honours the initial state's dims: 101, 201, 301, then element-wise sums."""
        for variant, path in self.dims_models():
            with self.subTest(model=path.name):
                self.assertEqual(self.outputs(self.simulate(variant, path)), DIMS_CONTRACT)

    def test_released_triton(self):
        """Released Triton: the file's first value broadcast; the tensorflow backend refuses."""
        released = triton_sim.FIXED_TRITON - {triton_sim.INITIAL_DIMS}
        for variant, path in self.dims_models():
            with self.subTest(model=path.name):
                want = ([DIMS_TENSORFLOW] * 3 if variant.backend is Backend.SAVEDMODEL
                        else DIMS_RELEASED)
                self.assertEqual(self.outputs(self.simulate(variant, path, released)), want)


if __name__ == "__main__":
    unittest.main()
