"""The sequences the real-server tests drive and the outputs the contract expects.

Every table holds literals: values sent and running sums written out by
hand from CONTRACT.md section 3 and the upstream QA clients (reference
section 7), never computed by the code under test. The families share them;
`expected_outputs` applies the only places the contract lets families differ:
string models (ONNX strings are identities; python and savedmodel strings are
decimal running sums whose state starts empty, docs/models.md "String states") and the
numeric initial value (100 for a numeric file initial state, 0 otherwise).
The state-coverage repositories (every state dtype, a wider state, a state
of another shape, the single-buffer option) have their own tables of small
integers (CONTRACT.md section 3, "States beyond upstream's"): every sum at
most 27 beyond the file's 100, so int8 (127) and bfloat16 (exact up to 256)
hold every value, with the running XOR for a boolean state and
[running sum, step count] for the `_state_sum_count` models;
`coverage_steps` and `coverage_outputs` pick a model's table.
`tests/e2e/families_test.py` (ExpectationsTest) checks these tables against
the contract's literals.
"""

import dataclasses
from typing import Optional, Sequence, Tuple

from verification.families import STRINGS_IDENTITY, STRINGS_NONE, STRINGS_SUM, family


@dataclasses.dataclass(frozen=True)
class Step:
    """One request of a sequence: its value (a tuple: one per element) and sequence flags."""

    value: object
    start: bool = False
    end: bool = False


def steps(values, start=True, end=True):
    """A sequence of values with START on the first and END on the last."""
    last = len(values) - 1
    return [Step(v, start and i == 0, end and i == last) for i, v in enumerate(values)]


# (values, outputs) per sequence; outputs are the running sums.
SIMPLE = ((1, 2, 3, 4, 5, 6, 7, 8, 9), (1, 3, 6, 10, 15, 21, 28, 36, 45))
LENGTH1 = ((42,), (42,))
# START again on the third request resets the sum: 42 + 9 = 51.
NO_END_STEPS = (Step(1, start=True), Step(2), Step(42, start=True), Step(9, end=True))
NO_END = ((1, 2, 42, 9), (1, 3, 42, 51))
AFTER_END = ((1, 2, 3), (1, 3, 6))
HALF_BATCH = {987: ((1, 2, 3, 4), (1, 3, 6, 10)), 988: ((0, 9, 5, 13), (0, 9, 14, 27))}
FULL_BATCH = {
    1001: ((1, 2, 3), (1, 3, 6)),
    1002: ((11, 12, 13), (11, 23, 36)),
    1003: ((111, 112, 113), (111, 223, 336)),
    1004: ((1111, 1112, 1113), (1111, 2223, 3336)),
}
SKIP_BATCH = {
    1001: ((1, 3), (1, 4)),
    1002: ((11, 12, 13, 14), (11, 23, 36, 50)),
    1003: ((111, 113), (111, 224)),
    1004: ((1111, 1112, 1113, 1114), (1111, 2223, 3336, 4450)),
}
RAGGED_WIDTHS = {1001: 2, 1002: 2, 1003: 1, 1004: 3}
# A string a decimal-sum model cannot parse fails that request only: 1, then 1 + 2.
NOT_DECIMAL_SEQUENCE = ((1, "x1", 2), (1, None, 3))

# Numeric file initial state (CONTRACT.md section 1: int32 100, as upstream's harness).
FILE_INITIAL_VALUE = 100

# Several state pairs (docs/models.md "Several states"): pair k's state is (k + 1) *
# running sum + initial_k (file: 100 * (k + 1)), OUTPUT the sum over k of
# (k + 1) times it. Values 1, 2, 3, 4 ...
MULTI_WORKED = (1, 2, 3, 4)
# ... 1, 2, then 42 with START again, then 9 (running sums 1, 3, 42, 51) ...
MULTI_RESTART = (Step(1, start=True), Step(2), Step(42, start=True), Step(9, end=True))
# ... and two parallel sequences (running sums 1, 3, 6, 10 and 10, 30, 60, 100).
MULTI_PARALLEL = {2001: (1, 2, 3, 4), 2002: (10, 20, 30, 40)}
MULTI_STATE_EXPECTED = {  # initial state -> pair count -> table -> outputs
    "none": {
        2: {"worked": (5, 15, 30, 50), "restart": (5, 15, 210, 255),
            2001: (5, 15, 30, 50), 2002: (50, 150, 300, 500)},
        3: {"worked": (14, 42, 84, 140), "restart": (14, 42, 588, 714),
            2001: (14, 42, 84, 140), 2002: (140, 420, 840, 1400)},
    },
    "file": {
        2: {"worked": (505, 515, 530, 550), "restart": (505, 515, 710, 755),
            2001: (505, 515, 530, 550), 2002: (550, 650, 800, 1000)},
        3: {"worked": (1414, 1442, 1484, 1540), "restart": (1414, 1442, 1988, 2114),
            2001: (1414, 1442, 1484, 1540), 2002: (1540, 1820, 2240, 2800)},
    },
}
# What released Triton answers on the order repository's models (output state
# names sorting in another order than the inputs: 2 pairs A -> B, B -> A; 3
# pairs A -> B, B -> C, C -> A) when the backend hands state back: core
# updates the input at the output's position in sorted name order (server
# issue 8586), so after every step pair k's new state becomes the next
# pair's input (2 pairs: swapped). Worked by hand, 2 pairs, INPUT 1, 2:
# step 1 new = (1, 2), OUTPUT 1 + 2 * 2 = 5, then S = (2, 1); step 2 new =
# (2 + 2, 4 + 1) = (4, 5), OUTPUT 4 + 2 * 5 = 14 (a correct server: 15).
KNOWN_BUG_NAME_ORDER = "states paired by name order (server issue 8586)"
MULTI_STATE_NAME_ORDER_BUG = {  # pair count -> table -> outputs (no initial state)
    2: {"worked": (5, 14, 28, 46), "restart": (5, 14, 210, 213),
        2001: (5, 14, 28, 46), 2002: (50, 140, 280, 460)},
    3: {"worked": (14, 39, 75, 125), "restart": (14, 39, 588, 588),
        2001: (14, 39, 75, 125), 2002: (140, 390, 750, 1250)},
}


# The state-coverage repositories. Each table: name -> the steps sent (numeric
# models; boolean models get BOOLEAN_STEPS) and, per initial state, the
# outputs (one number, or a tuple of one per element). "worked" is
# CONTRACT.md's worked sequence; "restart" sends START again on its third
# step; "padded" runs four sequences on a batched model, each START in a round
# of its own so that 3601 and 3602 take the lower slots, and ends 3601 and 3602
# first: the last round leaves their slots idle below the live ones, which
# Triton fills with not-ready padding requests.
COVERAGE_STEPS = {
    "worked": steps((1, 2, 3, 4)),
    "restart": (Step(1, start=True), Step(2), Step(5, start=True), Step(9, end=True)),
}
COVERAGE_OUTPUTS = {  # initial state -> table -> outputs
    "none": {"worked": (1, 3, 6, 10), "restart": (1, 3, 5, 14)},
    "zero": {"worked": (1, 3, 6, 10), "restart": (1, 3, 5, 14)},
    "file": {"worked": (101, 103, 106, 110), "restart": (101, 103, 105, 114)},
}
PADDED_VALUES = {3601: (1, 2), 3602: (3, 4), 3603: (2, 4, 6), 3604: (5, 5, 5)}
PADDED_OUTPUTS = {  # initial state -> corrid -> outputs
    "none": {3601: (1, 3), 3602: (3, 7), 3603: (2, 6, 12), 3604: (5, 10, 15)},
    "zero": {3601: (1, 3), 3602: (3, 7), 3603: (2, 6, 12), 3604: (5, 10, 15)},
    "file": {3601: (101, 103), 3602: (103, 107), 3603: (102, 106, 112), 3604: (105, 110, 115)},
}
# The running XOR of a TYPE_BOOL state ("boolean" models; the file initial state holds true).
BOOLEAN_STEPS = {
    "worked": steps((True, False, True, True)),
    "restart": (Step(True, start=True), Step(True), Step(False, start=True), Step(True, end=True)),
}
BOOLEAN_OUTPUTS = {
    "none": {"worked": (True, True, False, True), "restart": (True, False, False, True)},
    "zero": {"worked": (True, True, False, True), "restart": (True, False, False, True)},
    "file": {"worked": (False, False, True, False), "restart": (False, True, True, False)},
}
BOOLEAN_PADDED_VALUES = {3601: (True, True), 3602: (False, True), 3603: (True, False, True),
                         3604: (True, True, True)}
BOOLEAN_PADDED_OUTPUTS = {
    "none": {3601: (True, False), 3602: (False, True), 3603: (True, True, False),
             3604: (True, False, True)},
    "zero": {3601: (True, False), 3602: (False, True), 3603: (True, True, False),
             3604: (True, False, True)},
    "file": {3601: (False, True), 3602: (True, False), 3603: (False, False, True),
             3604: (False, True, False)},
}
# `_state_sum_count` (state [2] = [running sum, step count], zero initial state):
# OUTPUT = sum + 100 * count.
SUM_COUNT_OUTPUTS = {"worked": (101, 203, 306, 410), "restart": (101, 203, 105, 214)}
SUM_COUNT_PADDED_OUTPUTS = {3601: (101, 203), 3602: (103, 207), 3603: (102, 206, 312),
                            3604: (105, 210, 315)}
# Variable shapes, no initial state: width-3 elements add up element-wise ...
WIDE_VALUES = ((1, 2, 3), (4, 5, 6))
WIDE_OUTPUTS = ((1, 2, 3), (5, 7, 9))
BOOLEAN_WIDE_VALUES = ((True, False, True), (True, True, False))
BOOLEAN_WIDE_OUTPUTS = ((True, False, True), (False, True, True))
# ... and batched sequences of widths 3, 2, 1 and 3 side by side, in lockstep
# (catalogue entry ragged-state-batch: no execution may hold two steps).
WIDTHS_VALUES = {3701: ((1, 2, 3), (4, 5, 6)), 3702: ((2, 1), (3, 3)), 3703: ((4,), (6,)),
                 3704: ((3, 2, 1), (1, 1, 1))}
WIDTHS_OUTPUTS = {3701: ((1, 2, 3), (5, 7, 9)), 3702: ((2, 1), (5, 4)), 3703: ((4,), (10,)),
                  3704: ((3, 2, 1), (4, 3, 2))}
BOOLEAN_WIDTHS_VALUES = {3701: ((True, False, True), (True, True, False)),
                         3702: ((False, True), (True, True)), 3703: ((True,), (True,)),
                         3704: ((False, False, True), (False, True, True))}
BOOLEAN_WIDTHS_OUTPUTS = {3701: ((True, False, True), (False, True, True)),
                          3702: ((False, True), (True, False)), 3703: ((True,), (False,)),
                          3704: ((False, False, True), (False, True, False))}
SUM_COUNT_DIMS = (2,)
SCALAR_DIMS = ()


# What released Triton answers to a scalar-state model (state dims [], int32,
# zero initial state), measured on tritonserver 2.51 with Triton's r24.10 CPU
# backends, one request per execution: (family, batched) -> (catalogue entry,
# prediction). A prediction is the error every request gets, or
# START_UNINITIALIZED: core gives the state a zero-byte buffer (server issue
# 3901), which the backend reads past at each START (an answer left open:
# its value plus whatever those bytes held), while every later step adds its
# value to the previous answer. Cases absent here answer the contract (python
# hands the model 4 bytes of zeros, the zero initial state's value).
START_UNINITIALIZED = "its value plus uninitialized memory at each START, then the running sum"
SCALAR_STATE_BUG = {
    ("onnx", True): ("3901", "not enough space: expected 4, got 0"),
    ("onnx", False): ("3901", "not enough space: expected 4, got 0"),
    ("libtorch", True): ("3901", START_UNINITIALIZED),
    ("libtorch", False): ("pytorch-scalar-output",
                          "output 'OUTPUT_STATE__1' is a scalar which is not supported."),
    ("savedmodel", True): ("3901", START_UNINITIALIZED),
    ("savedmodel", False): ("3901", START_UNINITIALIZED),
}


def coverage_steps(dtype: str, table: str):
    """The steps a state-coverage model of `dtype` is sent for `table` ("worked", "restart")."""
    return (BOOLEAN_STEPS if dtype == "boolean" else COVERAGE_STEPS)[table]


def coverage_outputs(dtype: str, table: str, initial_state: str = "none",
                     state_dims: Optional[Tuple[int, ...]] = None) -> Tuple:
    """What a state-coverage model answers to `table`: a literal row of the tables above.

    Args:
        dtype: the model's INPUT dtype ("boolean": the running XOR).
        table: "worked", "restart", or a corrid of PADDED_VALUES.
        initial_state: "none", "zero" or "file".
        state_dims: the state's own dims when they are not INPUT's ((2,): sum and count).
    """
    padded = table in PADDED_VALUES
    if state_dims == SUM_COUNT_DIMS:
        return (SUM_COUNT_PADDED_OUTPUTS if padded else SUM_COUNT_OUTPUTS)[table]
    if dtype == "boolean":
        return (BOOLEAN_PADDED_OUTPUTS if padded else BOOLEAN_OUTPUTS)[initial_state][table]
    return (PADDED_OUTPUTS if padded else COVERAGE_OUTPUTS)[initial_state][table]


def padded_values(dtype: str):
    """The values of the padded sequences (corrid -> values) for a model of `dtype`."""
    return BOOLEAN_PADDED_VALUES if dtype == "boolean" else PADDED_VALUES


def expected_outputs(family_name: str, dtype: str, values: Sequence, sums: Sequence,
                     initial_state: str = "none") -> Tuple:
    """What a model of a family answers to a sequence (CONTRACT.md section 3).

    Args:
        family_name: the model family (verification.families.FAMILIES).
        dtype: the model dtype ("float32", "int32", "bool", "object").
        values: the INPUT value of each step.
        sums: the literal running sums of the values (restarted at each START).
        initial_state: "none", "zero" or "file" (numeric file state: +100).

    Raises:
        ValueError: a string model of a family that has none.
    """
    if dtype == "object":
        rule = family(family_name).strings
        if rule == STRINGS_IDENTITY:
            return tuple(values)
        if rule == STRINGS_SUM:
            return tuple(sums)  # Triton core zeroes a string state: it starts empty
        assert rule == STRINGS_NONE, rule
        raise ValueError(f"family {family_name} has no string models (FAMILIES strings="
                         f"{rule!r}); a model {family_name}_..._object should not exist")
    offset = FILE_INITIAL_VALUE if initial_state == "file" else 0
    return tuple(s + offset for s in sums)


def load_output(family_name: str, dtype: str, value: int, index: int) -> int:
    """The load run's expected output at step `index` of a sequence sending `value` each step."""
    return expected_outputs(family_name, dtype, (value,), (value * (index + 1),))[0]
