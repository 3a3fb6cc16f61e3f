"""A catalogued bug's prediction, and the contract's answer, computed from the rules.

`answers` runs rounds of requests (what a check sends) through
verification/triton_sim.py around the contract's arithmetic
(verification/contract_runner.py): with `fixed=()` every simulated bug is
present (released Triton), with an entry in `fixed` that entry behaves as a
fixed Triton would, and `triton_sim.FIXED_TRITON` is the contract's world.
No answer is copied from a run: a bug's answer is what its rule gives for
these exact requests. Models of a family that keeps its own state (python,
savedmodel) hand their state forward correctly themselves, so core's
pairing by name order never reaches them; everything else reaches them,
such as a scalar state's empty buffer (entry 3901) at START, which their
backend turns into zeros (python) or uninitialized memory (tensorflow).

`open_elements` runs a prediction twice with different uninitialized
memory and marks the elements that differ: they are left open (an answer
matches the prediction when it equals it everywhere else).
"""

import functools
import pathlib
from typing import Dict, Iterable, List, Mapping, Optional, Tuple, Union

import numpy as np

from verification import expectations as exp
from verification import triton_sim
from verification.contract_runner import contract_runner
from verification.expectations import steps
from verification.families import family

Answer = Union[np.ndarray, str]  # an OUTPUT array, or the error text of a refused request
Rounds = List[Mapping[int, Tuple]]  # [{corrid: (value, flags)}], as SequenceBatcherSim.step takes


def answers(model_dir: pathlib.Path, family_name: str, rounds: Rounds, *,
            fixed: Iterable[str] = (), seed: int = 0) -> Dict[int, List[Answer]]:
    """Each sequence's answers to `rounds` on a server with the bugs not in `fixed`.

    A request of an execution the simulation fails (a backend's error)
    gets the error's text.
    """
    fixed = set(fixed)
    if family(family_name).keeps_own_state:
        fixed.add(triton_sim.NAME_ORDER)
    config = triton_sim.parse_config((pathlib.Path(model_dir) / "config.pbtxt").read_text())
    sim = triton_sim.SequenceBatcherSim(model_dir, contract_runner(config), updates_state=True,
                                        seed=seed, fixed=fixed)
    out: Dict[int, List[Answer]] = {}
    for requests in rounds:
        for corrid, answer in sim.step_each(requests).items():
            out.setdefault(corrid, []).append(
                str(answer) if isinstance(answer, triton_sim.TritonError) else answer.output)
    return out


def open_elements(model_dir: pathlib.Path, family_name: str, rounds: Rounds, *,
                  fixed: Iterable[str] = ()) -> Dict[int, List[Tuple[Answer, Optional[np.ndarray]]]]:
    """`answers` with a mask per array answer: True where uninitialized memory decides the element."""
    first = answers(model_dir, family_name, rounds, fixed=fixed, seed=1)
    second = answers(model_dir, family_name, rounds, fixed=fixed, seed=2)
    out = {}
    for corrid, values in first.items():
        out[corrid] = [(a, (a != b) if isinstance(a, np.ndarray) and isinstance(b, np.ndarray)
                        else None)
                       for a, b in zip(values, second[corrid], strict=True)]
    return out


def matches(answer: object, predicted: Answer, mask: Optional[np.ndarray] = None) -> bool:
    """Whether a server's answer is the predicted one (an error: its text holds the prediction's).

    Arrays compare element-wise in the prediction's shape; elements the mask
    leaves open match anything.
    """
    if isinstance(predicted, str):
        return isinstance(answer, str) and predicted in answer
    if not isinstance(answer, np.ndarray) or answer.shape != predicted.shape:
        return False
    same = answer == predicted
    if mask is not None:
        same = np.logical_or(same, mask)
    return bool(np.all(same))


@functools.lru_cache(maxsize=None)
def name_order(model_dir: pathlib.Path, family_name: str, table) -> Tuple[int, ...]:
    """Released Triton's answers (entry 8586) to the requests MultiStateChecks sends for a table.

    The requests (verification/expectations.py): one sequence (`worked`,
    `restart`) or the two parallel ones (`MULTI_PARALLEL`), each step in one
    round; one number per step (every element holds it).
    """
    if table in exp.MULTI_PARALLEL:
        rounds = rounds_of({c: steps(v) for c, v in exp.MULTI_PARALLEL.items()})
    else:
        rounds = rounds_of({1: steps(exp.MULTI_WORKED) if table == "worked" else exp.MULTI_RESTART})
    corrid = table if table in exp.MULTI_PARALLEL else 1
    return tuple(int(a.reshape(-1)[0]) for a in answers(model_dir, family_name, rounds)[corrid])


def rounds_of(sequences) -> Rounds:
    """Sequences of `Step`s sent side by side, as rounds: step i of each in round i."""
    rounds: Rounds = []
    for corrid, sequence in sequences.items():
        for index, step in enumerate(sequence):
            if index == len(rounds):
                rounds.append({})
            flags = " ".join(f for f, on in (("start", step.start), ("end", step.end)) if on)
            rounds[index][corrid] = (step.value, flags)
    return rounds
