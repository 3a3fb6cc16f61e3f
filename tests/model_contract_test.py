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
pairs nor between interleaved sequences. The state-coverage repositories
(every state type, a wider state, states shaped unlike INPUT, the
single-buffer option, the oldest strategy for every family) get their own
literal tables: the worked sequence, START mid-sequence, interleaved
sequences with a padding slot, width 3 on variable shapes, and the output
type of every answer; the scalar state also as released Triton answers it
(catalogue entry 3901). How many models of the backend each repository
holds, multi-state ones included, is the literal table of
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

import ml_dtypes
import numpy as np
from tritonclient.grpc import model_config_pb2 as mc

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
        """Load every model once; `models` are those the upstream clients' sequences fit.

        Left out: the initial-state dims reproducers (InitialStateDimsContractTest
        takes width-3 sequences only: their state starts as the file's 3
        values, which a width-1 INPUT does not fit) and the state-type, wider
        and shaped-state repositories, whose types and rules those sequences'
        sums (up to 22224) do not fit (their own classes below). The
        single-buffer and dyna-family repositories' models are ordinary
        float32 / int32 models and stay in.
        """
        cls.all_models = _load_models()
        cls.models = [(v, p) for v, p in cls.all_models if not v.initial_state_dims
                      and p.parent.name not in OWN_TABLE_REPOSITORIES]
        cls.runners = {path: _runner(path) for _, path in cls.all_models}

    def repository_models(self, repository: str) -> List[Tuple[Variant, pathlib.Path]]:
        """This backend's models of one repository: as many as tests/expected_models.py gives.

        A table count with none built fails (never a skip), and so do built
        models the table does not count.
        """
        models = [(v, p) for v, p in self.all_models if p.parent.name == repository]
        want = expected_models.EXPECTED_MODELS.get(repository, {}).get(BACKEND, 0)
        self.assertEqual(len(models), want, f"{BACKEND} models built in {repository} vs"
                                            " tests/expected_models.py")
        return models

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


STATE_TYPE_REPOSITORIES = (
    "qa_state_type_implicit_model_repository",
    "qa_variable_state_type_implicit_model_repository",
    "qa_state_type_initial_state_implicit_model_repository",
    "qa_state_type_initial_state_file_implicit_model_repository",
)
WIDER_REPOSITORY = "qa_wider_state_implicit_model_repository"
SHAPE_REPOSITORY = "qa_state_shape_implicit_model_repository"
SAME_BUFFER_REPOSITORY = "qa_same_buffer_implicit_model_repository"
DYNA_FAMILIES_REPOSITORY = "qa_dyna_sequence_families_implicit_model_repository"
# Repositories the upstream clients' sequences do not fit: their own tables below.
OWN_TABLE_REPOSITORIES = frozenset(STATE_TYPE_REPOSITORIES + (WIDER_REPOSITORY, SHAPE_REPOSITORY))
ZERO = InitialState.ZERO
T, F = True, False
# The numpy type of OUTPUT and OUTPUT_STATE per state type (docs/models.md,
# "Every state type"; TYPE_BF16 is ml_dtypes' bfloat16, as tritonclient's).
STATE_NUMPY = {
    DType.BOOLEAN: np.bool_, DType.INT8: np.int8, DType.INT16: np.int16, DType.INT32: np.int32,
    DType.INT64: np.int64, DType.UINT8: np.uint8, DType.UINT16: np.uint16,
    DType.UINT32: np.uint32, DType.UINT64: np.uint64, DType.FLOAT16: np.float16,
    DType.BFLOAT16: ml_dtypes.bfloat16, DType.FLOAT32: np.float32, DType.FLOAT64: np.float64,
}
# The worked sequence, INPUT 1, 2, 3, 4 (boolean: T, F, T, T), START first and
# END last: OUTPUT per initial state (file: 100, boolean true).
WORKED_INPUT = {"numeric": [1, 2, 3, 4], "boolean": [T, F, T, T]}
WORKED = {
    "numeric": {NONE: [1, 3, 6, 10], ZERO: [1, 3, 6, 10], FILE: [101, 103, 106, 110]},
    "boolean": {NONE: [T, T, F, T], ZERO: [T, T, F, T], FILE: [F, F, T, F]},
}
# START again on the third step: 1, 2, 5 (start), 6 (boolean: T, T, F (start), T).
RESTART_INPUT = {"numeric": [1, 2, 5, 6], "boolean": [T, T, F, T]}
RESTART = {
    "numeric": {NONE: [1, 3, 5, 11], ZERO: [1, 3, 5, 11], FILE: [101, 103, 105, 111]},
    "boolean": {NONE: [T, F, F, T], ZERO: [T, F, F, T], FILE: [F, T, T, F]},
}
# Two interleaved sequences: 1 sends 1, 2, 3, 4 (boolean T, F, T, T), 2 sends
# 5, 6, 7 (F, T, T). Round 3 holds sequence 2 alone (slot 1): a batched
# direct model pads slot 0 with a null (not ready) request.
INTERLEAVED_INPUT = {
    "numeric": [{1: (1, "start"), 2: (5, "start")}, {1: (2, "")}, {2: (6, "")},
                {1: (3, ""), 2: (7, "end")}, {1: (4, "end")}],
    "boolean": [{1: (T, "start"), 2: (F, "start")}, {1: (F, "")}, {2: (T, "")},
                {1: (T, ""), 2: (T, "end")}, {1: (T, "end")}],
}
INTERLEAVED_ANSWERS = {
    "numeric": {NONE: {1: [1, 3, 6, 10], 2: [5, 11, 18]},
                ZERO: {1: [1, 3, 6, 10], 2: [5, 11, 18]},
                FILE: {1: [101, 103, 106, 110], 2: [105, 111, 118]}},
    "boolean": {NONE: {1: [T, T, F, T], 2: [F, T, F]}, ZERO: {1: [T, T, F, T], 2: [F, T, F]},
                FILE: {1: [F, F, T, F], 2: [T, F, T]}},
}
# Executions of INTERLEAVED_INPUT: batched direct (round 3 padded), batched oldest, unbatched.
INTERLEAVED_EXECUTIONS = {"direct": [2, 1, 2, 2, 1], "oldest": [2, 1, 1, 2, 1],
                          "nobatch": [1] * 7}
# Width 3 on a variable shape: [1, 2, 3] then [4, 5, 6] (boolean [T, F, T], [T, T, F]).
WIDTH_INPUT = {"numeric": [[1, 2, 3], [4, 5, 6]], "boolean": [[T, F, T], [T, T, F]]}
WIDTH = {"numeric": [[1, 2, 3], [5, 7, 9]], "boolean": [[T, F, T], [F, T, T]]}
# A wider state: INPUT's dtype -> the numpy type of OUTPUT and the state.
WIDER_NUMPY = {DType.INT32: np.int64, DType.FLOAT16: np.float32}
# State dims [2]: OUTPUT = running sum + 100 * steps; the state is [sum, steps].
SUM_COUNT = [101, 203, 306, 410]
SUM_COUNT_STATE = [[1, 1], [3, 2], [6, 3], [10, 4]]
SUM_COUNT_INTERLEAVED = {1: [101, 203, 306, 410], 2: [105, 211, 318]}
# A scalar state (dims []): the running sum, OUTPUT [1] and the state [] per batch entry.
SCALAR = [1, 3, 6, 10]
# Released Triton's scalar state (catalogue entry 3901, measured on 2.51 with
# the real backends): every onnx request refused; libtorch (batched) and
# savedmodel read uninitialized memory u at START, so the worked sequence
# answers 1 + u, 3 + u, 6 + u, 10 + u (u was 0 for libtorch on a quiet
# server); python hands its model zeros: the contract. A non-batching libtorch
# model returns its state without dims, which the pytorch backend refuses at
# every request (entry pytorch-scalar-output, also with 3901 fixed).
SCALAR_ONNX = "onnx runtime error 2: not enough space: expected 4, got 0"
SCALAR_LIBTORCH_NOBATCH = "output 'OUTPUT_STATE__1' is a scalar which is not supported."
SCALAR_OPEN_START = {(Backend.LIBTORCH, True), (Backend.SAVEDMODEL, True),
                     (Backend.SAVEDMODEL, False)}  # (family, batched)
# The dyna models' END and CORRID controls per family (CONTRACT.md section 2;
# libtorch: positions 4 and 5, CORRID INT64 as torch has no uint64).
DYNA_CONTROLS = {Backend.LIBTORCH: ("END__4", "CORRID__5", "TYPE_INT64"),
                 Backend.PYTHON: ("END", "CORRID", "TYPE_UINT64"),
                 Backend.SAVEDMODEL: ("END", "CORRID", "TYPE_UINT64")}


def _kind(variant: Variant) -> str:
    """"boolean" for a TYPE_BOOL state (the running XOR), else "numeric"."""
    return "boolean" if variant.state_type is DType.BOOLEAN else "numeric"


def _values(array: np.ndarray) -> list:
    """The array's elements in order, as Python numbers (bfloat16 through float32)."""
    if array.dtype == ml_dtypes.bfloat16:
        array = array.astype(np.float32)
    return np.ravel(array).tolist()


def _label(path: pathlib.Path) -> str:
    """Repository/model, for subtest names."""
    return f"{path.parent.name}/{path.name}"


class StateCoverageTestCase(ContractTestCase):
    """Drives the state-coverage models and checks each answer's type, shape and values."""

    def assert_tensor(self, array, numpy_type, shape, values, what: str) -> None:
        """`array` has the type, the shape and the elements (in order) given."""
        self.assertIsInstance(array, np.ndarray, what)
        self.assertEqual((array.dtype, array.shape), (np.dtype(numpy_type), shape), what)
        self.assertEqual(_values(array), list(values), what)

    def data_shape(self, variant: Variant, width: int = 1) -> Tuple[int, ...]:
        """OUTPUT's (and a same-shaped state's) shape for one request of `width` elements."""
        return ((1,) if variant.max_batch else ()) + (width,)

    def answer(self, variant: Variant, response, output, state, numpy_type, width: int = 1,
               state_shape=None, what: str = "") -> None:
        """OUTPUT holds `output` per element and the (first) state output `state`."""
        name = state_outputs(variant)[0]
        self.assertEqual(list(response.states), [name], what)
        self.assert_tensor(response.output, numpy_type, self.data_shape(variant, width),
                           output, f"{what} OUTPUT")
        if state_shape is None:
            state_shape = self.data_shape(variant, width)
        self.assert_tensor(response.states[name], numpy_type, state_shape, state, f"{what} {name}")

    def rounds(self, sim, rounds) -> Dict[int, list]:
        """Each sequence's answers (responses, or the text of a refused request) to the rounds."""
        got: Dict[int, list] = {}
        for requests in rounds:
            for corrid, answer in sim.step_each(requests).items():
                got.setdefault(corrid, []).append(
                    str(answer) if isinstance(answer, triton_sim.TritonError) else answer)
        return got

    def one_sequence(self, sim, values, restart_at=()) -> list:
        """Responses to one sequence (id 1): START first and at `restart_at`, END last."""
        rounds = [{1: (value, " ".join(f for f, on in (
            ("start", i == 0 or i in restart_at), ("end", i == len(values) - 1)) if on))}
            for i, value in enumerate(values)]
        return self.rounds(sim, rounds)[1]

    def interleaved(self, variant: Variant, path: pathlib.Path, numpy_type, answers,
                    kind: str = "numeric", fixed=triton_sim.FIXED_TRITON, state=None) -> None:
        """INTERLEAVED_INPUT: each sequence's answers and the executions (padding included).

        `answers` maps each sequence to its OUTPUT per step; the state output
        holds the same unless `state` gives each step's state (dims [2]).
        """
        sim = self.simulate(variant, path, fixed)
        got = self.rounds(sim, INTERLEAVED_INPUT[kind])
        state_shape = None if state is None else self.data_shape(variant, 2)
        for corrid, wanted in answers.items():
            self.assertEqual(len(got[corrid]), len(wanted))
            for step, (response, value) in enumerate(zip(got[corrid], wanted, strict=True)):
                self.answer(variant, response, [value],
                            [value] if state is None else state[corrid][step], numpy_type,
                            state_shape=state_shape, what=f"sequence {corrid} step {step + 1}:")
        strategy = "oldest" if variant.dyna else "direct"
        self.assertEqual(sim.executions,
                         INTERLEAVED_EXECUTIONS[strategy if variant.max_batch else "nobatch"])


class StateTypeContractTest(StateCoverageTestCase):
    """Every state type, INPUT and OUTPUT of that type: the sums (BOOL: XOR) of the tables above."""

    def state_type_models(self) -> List[Tuple[Variant, pathlib.Path]]:
        """The four state-type repositories' models, as many as the literal table gives."""
        models = []
        for repository in STATE_TYPE_REPOSITORIES:
            models += self.repository_models(repository)
        for variant, path in models:
            self.assertIsNone(variant.state_dtype, _label(path))
        return models

    def test_worked_sequence(self):
        """1, 2, 3, 4 -> 1, 3, 6, 10 (file 101 ... 110); T, F, T, T -> T, T, F, T (file F, F, T, F)."""
        for variant, path in self.state_type_models():
            with self.subTest(model=_label(path)):
                kind = _kind(variant)
                responses = self.one_sequence(self.simulate(variant, path), WORKED_INPUT[kind])
                for step, (response, value) in enumerate(
                        zip(responses, WORKED[kind][variant.initial_state], strict=True)):
                    self.answer(variant, response, [value], [value], STATE_NUMPY[variant.dtype],
                                what=f"step {step + 1}:")

    def test_start_mid_sequence(self):
        """START again on step 3 resets the state: 1, 3, 5, 11 (file 101, 103, 105, 111)."""
        for variant, path in self.state_type_models():
            with self.subTest(model=_label(path)):
                kind = _kind(variant)
                responses = self.one_sequence(self.simulate(variant, path), RESTART_INPUT[kind],
                                              restart_at=(2,))
                for step, (response, value) in enumerate(
                        zip(responses, RESTART[kind][variant.initial_state], strict=True)):
                    self.answer(variant, response, [value], [value], STATE_NUMPY[variant.dtype],
                                what=f"step {step + 1}:")

    def test_interleaved_with_padding(self):
        """Two sequences interleaved; a batched model pads the idle slot below a busy one."""
        for variant, path in self.state_type_models():
            with self.subTest(model=_label(path)):
                kind = _kind(variant)
                self.interleaved(variant, path, STATE_NUMPY[variant.dtype],
                                 INTERLEAVED_ANSWERS[kind][variant.initial_state], kind)

    def test_variable_width(self):
        """Width 3: [1, 2, 3], [4, 5, 6] -> [1, 2, 3], [5, 7, 9] (boolean: element-wise XOR)."""
        for variant, path in [(v, p) for v, p in self.state_type_models() if v.variable]:
            with self.subTest(model=_label(path)):
                kind = _kind(variant)
                responses = self.one_sequence(self.simulate(variant, path), WIDTH_INPUT[kind])
                for step, (response, values) in enumerate(zip(responses, WIDTH[kind], strict=True)):
                    self.answer(variant, response, values, values, STATE_NUMPY[variant.dtype],
                                width=3, what=f"step {step + 1}:")


class WiderStateContractTest(StateCoverageTestCase):
    """A state wider than INPUT: OUTPUT and the state come back in the state's type."""

    def test_worked_sequence(self):
        """INT32 / FP16 INPUT 1, 2, 3, 4 -> INT64 / FP32 1, 3, 6, 10."""
        for variant, path in self.repository_models(WIDER_REPOSITORY):
            with self.subTest(model=_label(path)):
                responses = self.one_sequence(self.simulate(variant, path), WORKED_INPUT["numeric"])
                for step, (response, value) in enumerate(
                        zip(responses, WORKED["numeric"][NONE], strict=True)):
                    self.answer(variant, response, [value], [value], WIDER_NUMPY[variant.dtype],
                                what=f"step {step + 1}:")

    def test_interleaved_with_padding(self):
        """The interleaved sequences, each answer in the state's type."""
        for variant, path in self.repository_models(WIDER_REPOSITORY):
            with self.subTest(model=_label(path)):
                self.interleaved(variant, path, WIDER_NUMPY[variant.dtype],
                                 INTERLEAVED_ANSWERS["numeric"][NONE])


class StateShapeContractTest(StateCoverageTestCase):
    """States shaped unlike INPUT [1]: [2] (sum and step count) and [] (a scalar)."""

    def shaped(self, dims) -> List[Tuple[Variant, pathlib.Path]]:
        """The shape repository's models whose state has `dims`."""
        models = self.repository_models(SHAPE_REPOSITORY)
        return [(v, p) for v, p in models if v.state_dims == dims]

    def test_sum_count(self):
        """1, 2, 3, 4 -> 101, 203, 306, 410; the state [1, 1], [3, 2], [6, 3], [10, 4]."""
        for variant, path in self.shaped((2,)):
            for fixed in ((), triton_sim.FIXED_TRITON):  # no catalogued bug touches it
                with self.subTest(model=_label(path), fixed=sorted(fixed)):
                    responses = self.one_sequence(self.simulate(variant, path, fixed),
                                                  WORKED_INPUT["numeric"])
                    for step, response in enumerate(responses):
                        self.answer(variant, response, [SUM_COUNT[step]], SUM_COUNT_STATE[step],
                                    STATE_NUMPY[variant.dtype],
                                    state_shape=self.data_shape(variant, 2),
                                    what=f"step {step + 1}:")

    def test_sum_count_interleaved(self):
        """Interleaved with a padding slot: 101, 203, 306, 410 and 105, 211, 318."""
        for variant, path in self.shaped((2,)):
            with self.subTest(model=_label(path)):
                states = {1: [[1, 1], [3, 2], [6, 3], [10, 4]], 2: [[5, 1], [11, 2], [18, 3]]}
                self.interleaved(variant, path, STATE_NUMPY[variant.dtype], SUM_COUNT_INTERLEAVED,
                                 state=states)

    def scalar_answers(self, variant: Variant, path: pathlib.Path, fixed) -> list:
        """The worked sequence's responses, or the text of each refused request."""
        return self.one_sequence(self.simulate(variant, path, fixed), WORKED_INPUT["numeric"])

    def test_scalar_contract(self):
        """A Triton with 3901 (and the pytorch backend's scalar outputs) fixed: 1, 3, 6, 10."""
        for variant, path in self.shaped(()):
            with self.subTest(model=_label(path)):
                answers = self.scalar_answers(variant, path, triton_sim.FIXED_TRITON)
                for step, (response, value) in enumerate(zip(answers, SCALAR, strict=True)):
                    self.answer(variant, response, [value], [value], STATE_NUMPY[variant.dtype],
                                state_shape=(1,) if variant.max_batch else (),
                                what=f"step {step + 1}:")

    def test_scalar_libtorch_unbatched(self):
        """3901 fixed, the pytorch backend as released: the non-batching libtorch model is refused."""
        fixed = triton_sim.FIXED_TRITON - {triton_sim.SCALAR_OUTPUT}
        for variant, path in self.shaped(()):
            if variant.backend is Backend.LIBTORCH and not variant.max_batch:
                with self.subTest(model=_label(path)):
                    self.assertEqual(self.scalar_answers(variant, path, fixed),
                                     [SCALAR_LIBTORCH_NOBATCH] * 4)

    def test_scalar_released_triton(self):
        """Released Triton (3901): onnx refused; libtorch and savedmodel from u; python right."""
        released = triton_sim.FIXED_TRITON - {triton_sim.SCALAR_STATE, triton_sim.SCALAR_OUTPUT}
        for variant, path in self.shaped(()):
            with self.subTest(model=_label(path)):
                answers = self.scalar_answers(variant, path, released)
                batched = variant.max_batch > 0
                if variant.backend is Backend.ONNX:
                    self.assertEqual(answers, [SCALAR_ONNX] * 4)
                elif variant.backend is Backend.LIBTORCH and not batched:
                    self.assertEqual(answers, [SCALAR_LIBTORCH_NOBATCH] * 4)
                else:
                    outputs = [r.output for r in answers]
                    for output in outputs:
                        self.assert_tensor(output, np.int32, self.data_shape(variant),
                                           _values(output), "OUTPUT")
                    start = (int(_values(outputs[0])[0]) - 1
                             if (variant.backend, batched) in SCALAR_OPEN_START else 0)
                    self.assertEqual([int(np.int32(_values(o)[0] - start)) for o in outputs],
                                     SCALAR)


class SameBufferContractTest(StateCoverageTestCase):
    """use_same_buffer_for_input_output: measured on 2.51, it changes nothing."""

    def test_released_triton_answers_the_contract(self):
        """The option is in the config; released Triton answers 1, 3, 6, 10 and the interleaved table."""
        for variant, path in self.repository_models(SAME_BUFFER_REPOSITORY):
            with self.subTest(model=_label(path)):
                sim = self.simulate(variant, path, fixed=())
                self.assertTrue(all(s.use_same_buffer_for_input_output
                                    for s in sim.config.sequence_batching.state))
                responses = self.one_sequence(sim, WORKED_INPUT["numeric"])
                for step, (response, value) in enumerate(
                        zip(responses, WORKED["numeric"][NONE], strict=True)):
                    self.answer(variant, response, [value], [value], STATE_NUMPY[variant.dtype],
                                what=f"step {step + 1}:")
                self.interleaved(variant, path, STATE_NUMPY[variant.dtype],
                                 INTERLEAVED_ANSWERS["numeric"][NONE], fixed=())


class DynaFamiliesContractTest(StateCoverageTestCase):
    """The oldest strategy for libtorch, python and savedmodel (upstream has onnx and plan only)."""

    def test_controls_and_strategy(self):
        """END and CORRID declared (libtorch END__4, CORRID__5 INT64); batched: oldest."""
        for variant, path in self.repository_models(DYNA_FAMILIES_REPOSITORY):
            with self.subTest(model=_label(path)):
                config = self.simulate(variant, path).config
                end, corrid, corrid_type = DYNA_CONTROLS[variant.backend]
                controls = {c.name: c.control[0] for c in config.sequence_batching.control_input}
                self.assertIn(end, controls)
                self.assertEqual(mc.DataType.Name(controls[corrid].data_type),
                                 corrid_type)
                self.assertEqual(config.sequence_batching.WhichOneof("strategy_choice"),
                                 "oldest" if variant.max_batch else None)

    def test_worked_and_interleaved(self):
        """1, 2, 3, 4 -> 1, 3, 6, 10; the interleaved table, real requests only when batched."""
        for variant, path in self.repository_models(DYNA_FAMILIES_REPOSITORY):
            with self.subTest(model=_label(path)):
                responses = self.one_sequence(self.simulate(variant, path), WORKED_INPUT["numeric"])
                for step, (response, value) in enumerate(
                        zip(responses, WORKED["numeric"][NONE], strict=True)):
                    self.answer(variant, response, [value], [value], np.int32,
                                what=f"step {step + 1}:")
                self.interleaved(variant, path, np.int32, INTERLEAVED_ANSWERS["numeric"][NONE])


if __name__ == "__main__":
    unittest.main()
