"""The contract's arithmetic as a `verification.triton_sim` runner, for any numeric model config.

CONTRACT.md section 3 and docs/models.md "Several states": for state pairs
k = 0 .. N-1 in config order, new_k = (k + 1) * INPUT + S_k and OUTPUT =
sum_k (k + 1) * new_k; without an initial state a pair takes (k + 1) * INPUT
alone unless READY and not START. Every sum is computed in the state's type
(INPUT cast to it; OUTPUT has it too); a TYPE_BOOL state is the running XOR
of INPUT. A single state of other dims than INPUT [1] has its own rule
(docs/models.md, "States shaped unlike INPUT"): dims [2] keeps [running sum,
step count] and OUTPUT = sum + 100 * count; dims [] keeps the running sum as
a scalar per batch entry. Every name comes from the config (libtorch
`__<index>` names included), so the same runner stands in for a model of
any family. The checks run it under the simulation to compute a catalogued
bug's prediction from the bug's rule (verification/predictions.py), and the
fake server of the verify tests answers with it. Numeric models only: a
string model's arithmetic differs per family.
"""

from typing import Dict, Mapping

import numpy as np
from tritonclient.grpc import model_config_pb2 as mc

from verification.triton_sim import Runner, SimError, numpy_type

_KIND = mc.ModelSequenceBatching.Control
_FIELDS = ("int32_false_true", "fp32_false_true", "bool_false_true")


def _control_names(config: mc.ModelConfig) -> Dict[int, str]:
    """Control kind -> the config's input name for it."""
    return {c.control[0].kind: c.name for c in config.sequence_batching.control_input}


def _true_value(config: mc.ModelConfig, kind: int):
    for control_input in config.sequence_batching.control_input:
        control = control_input.control[0]
        if control.kind == kind:
            field = next(f for f in _FIELDS if len(getattr(control, f)))
            return getattr(control, field)[1]
    raise SimError(f"model '{config.name}' declares no control of kind {_KIND.Kind.Name(kind)}")


# Dims [2] state: OUTPUT = running sum + SUM_COUNT_WEIGHT * step count.
SUM_COUNT_WEIGHT = 100


def _layout_rule(config: mc.ModelConfig) -> str:
    """"sum_count" (state dims [2]), "scalar" (dims []), or "" (dims like INPUT's)."""
    states = config.sequence_batching.state
    if len(states) != 1 or list(states[0].dims) == list(config.input[0].dims):
        return ""
    return {(2,): "sum_count", (): "scalar"}[tuple(states[0].dims)]


def _shaped_run(x: np.ndarray, state: np.ndarray, rule: str):
    """(new state, OUTPUT) of a single state whose dims differ from INPUT [1]'s."""
    if rule == "scalar":
        summed = x + state.reshape(x.shape)
        return summed.reshape(state.shape), summed
    total = state[..., 0:1] + x
    count = state[..., 1:2] + 1
    return np.concatenate([total, count], axis=-1), total + SUM_COUNT_WEIGHT * count


def contract_runner(config: mc.ModelConfig) -> Runner:
    """A runner computing the contract for `config` (one data input, one output, N state pairs).

    Raises:
        SimError: a string model, or a config without START or READY.
    """
    dtype = numpy_type(config.sequence_batching.state[0].data_type)
    if dtype is np.object_:
        raise SimError(f"model '{config.name}': the contract runner computes numeric models only")
    rule = _layout_rule(config)
    names = _control_names(config)
    start, ready = names[_KIND.CONTROL_SEQUENCE_START], names[_KIND.CONTROL_SEQUENCE_READY]
    start_true = _true_value(config, _KIND.CONTROL_SEQUENCE_START)
    ready_true = _true_value(config, _KIND.CONTROL_SEQUENCE_READY)
    states = [(s.input_name, s.output_name, bool(s.initial_state))
              for s in config.sequence_batching.state]
    data_in, data_out = config.input[0].name, config.output[0].name

    def run(feed: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
        x = feed[data_in].astype(dtype)
        if rule:  # a zero initial state: Triton resets it on START
            new, output = _shaped_run(x, feed[states[0][0]].astype(dtype), rule)
            return {states[0][1]: new.astype(dtype), data_out: output.astype(dtype)}
        carry = np.logical_and(feed[ready] == ready_true, feed[start] != start_true)
        if x.ndim > carry.ndim:
            carry = carry.reshape(carry.shape + (1,) * (x.ndim - carry.ndim))
        outputs, total = {}, None
        for k, (state_in, state_out, initialised) in enumerate(states):
            if dtype is np.bool_:  # a BOOL state (single pair): the running XOR
                new = np.logical_xor(x, feed[state_in])
                new = new if initialised else np.where(carry, new, x)
                return {state_out: new, data_out: new.copy()}
            scaled = ((k + 1) * x).astype(dtype)
            summed = (scaled + feed[state_in]).astype(dtype)
            new = summed if initialised else np.where(carry, summed, scaled).astype(dtype)
            outputs[state_out] = new
            weighted = ((k + 1) * new).astype(dtype)
            total = weighted if total is None else (total + weighted).astype(dtype)
        outputs[data_out] = total
        return outputs

    return run
