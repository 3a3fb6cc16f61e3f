"""Runs a generated SavedModel the way Triton's tensorflow backend does.

The backend loads `<model>/1/model.savedmodel` with TensorFlow's SavedModel
loader into one session per instance and, for every execution, feeds each
request input by the tensor name its `serving_default` signature gives it,
or by the raw input name when the signature lacks it (that is how the state
inputs that Triton attaches, INPUT_STATE and any further pairs', reach these
models), and fetches the signature's output tensors: OUTPUT and every state
output. This runner does the same through
`tf.compat.v1`, so a test passing here exercises the stock-server I/O path.
`Session.run` converts each fed array to its placeholder's dtype (on a
server the request already has the config's type), so every state dtype
runs, boolean, float16 and bfloat16 (fed as float32, which numpy has)
included; outputs come back in the model's dtypes.
`tf.saved_model.load` also works with these models (see
tests/savedmodel_builder_test.py); it is not used here because it bypasses
the SignatureDef that Triton reads.
"""

import pathlib
from typing import Callable, Dict

import numpy as np
import tensorflow as tf

SIGNATURE_KEY = "serving_default"


class SavedModelRunner:
    """One loaded model with its own graph and session (like one instance)."""

    def __init__(self, export_dir: pathlib.Path) -> None:
        """Load the SavedModel under the `serve` tag into a private session."""
        self._graph = tf.Graph()
        self._session = tf.compat.v1.Session(graph=self._graph)
        with self._graph.as_default():
            meta_graph = tf.compat.v1.saved_model.loader.load(
                self._session, [tf.saved_model.SERVING], str(export_dir)
            )
        signature = meta_graph.signature_def[SIGNATURE_KEY]
        self._input_names = {key: value.name for key, value in signature.inputs.items()}
        self._output_names = {key: value.name for key, value in signature.outputs.items()}

    def feed_name(self, name: str) -> str:
        """Tensor fed for a request input: the signature's, else `<name>:0`."""
        return self._input_names.get(name, f"{name}:0")

    def __call__(self, inputs: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """Run one execution; returns every signature output as a numpy array."""
        feeds = {self.feed_name(name): value for name, value in inputs.items()}
        return self._session.run(self._output_names, feeds)

    def close(self) -> None:
        """Release the session (and with it the per-sequence state)."""
        self._session.close()


def load(model_dir: pathlib.Path) -> Callable[[Dict[str, np.ndarray]], Dict[str, np.ndarray]]:
    """Load `<model_dir>/1/model.savedmodel`; returns a callable runner.

    Args:
        model_dir: a generated model directory (holding config.pbtxt and 1/).

    Returns:
        A callable taking every input (INPUT, each state input such as
        INPUT_STATE, START, END, READY, CORRID; with a leading batch dimension
        when max_batch_size > 0) and returning OUTPUT and each state output
        by name ({"OUTPUT": ..., "OUTPUT_STATE": ..., ...}).
    """
    return SavedModelRunner(pathlib.Path(model_dir) / "1" / "model.savedmodel")
