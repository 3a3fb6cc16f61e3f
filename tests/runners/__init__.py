"""Model runners for the contract tests: `<backend>_runner.load(model_dir)`; `load_runner` picks one."""

import importlib
import pathlib

from verification.triton_sim import Runner


def load_runner(backend: str, model_dir: pathlib.Path) -> Runner:
    """The runner of `tests/runners/<backend>_runner.py` for one model directory."""
    module = importlib.import_module(f"tests.runners.{backend}_runner")
    return module.load(pathlib.Path(model_dir))
