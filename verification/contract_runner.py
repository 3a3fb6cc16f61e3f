"""The contract's arithmetic as a `verification.triton_sim` runner, for any numeric model config.

CONTRACT.md section 3 and docs/models.md "Several states": for state pairs
k = 0 .. N-1 in config order, new_k = (k + 1) * INPUT + S_k and OUTPUT =
sum_k (k + 1) * new_k; without an initial state a pair takes (k + 1) * INPUT
alone unless READY and not START. Every name comes from the config (libtorch
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


def contract_runner(config: mc.ModelConfig) -> Runner:
    """A runner computing the contract for `config` (one data input, one output, N state pairs).

    Raises:
        SimError: a string model, or a config without START or READY.
    """
    dtype = numpy_type(config.input[0].data_type)
    if dtype is np.object_:
        raise SimError(f"model '{config.name}': the contract runner computes numeric models only")
    names = _control_names(config)
    start, ready = names[_KIND.CONTROL_SEQUENCE_START], names[_KIND.CONTROL_SEQUENCE_READY]
    start_true = _true_value(config, _KIND.CONTROL_SEQUENCE_START)
    ready_true = _true_value(config, _KIND.CONTROL_SEQUENCE_READY)
    states = [(s.input_name, s.output_name, bool(s.initial_state))
              for s in config.sequence_batching.state]
    data_in, data_out = config.input[0].name, config.output[0].name

    def run(feed: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
        x = feed[data_in].astype(dtype)
        carry = np.logical_and(feed[ready] == ready_true, feed[start] != start_true)
        if x.ndim > carry.ndim:
            carry = carry.reshape(carry.shape + (1,) * (x.ndim - carry.ndim))
        outputs, total = {}, None
        for k, (state_in, state_out, initialised) in enumerate(states):
            scaled = ((k + 1) * x).astype(dtype)
            summed = (scaled + feed[state_in]).astype(dtype)
            new = summed if initialised else np.where(carry, summed, scaled).astype(dtype)
            outputs[state_out] = new
            weighted = ((k + 1) * new).astype(dtype)
            total = weighted if total is None else (total + weighted).astype(dtype)
        outputs[data_out] = total
        return outputs

    return run
