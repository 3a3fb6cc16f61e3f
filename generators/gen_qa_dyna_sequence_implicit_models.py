"""Upstream's dyna script: the dyna (oldest-strategy) implicit-state models.

Drop-in for Triton's `qa/common/gen_qa_dyna_sequence_implicit_models.py`,
run by file path as upstream's pipeline runs it (this folder is `SRCDIR`):

    python3 $SRCDIR/gen_qa_dyna_sequence_implicit_models.py --onnx --onnx_opset=0 \
        --models_dir=DIR

It takes upstream's dyna flags (`--onnx`, `--tensorrt`, `--variable`,
`--onnx_opset`, `--models_dir`) and writes what `gen_qa_implicit_models.py
--dyna` writes: the int32 `<family>_dyna_sequence_int32` and
`<family>_nobatch_dyna_sequence_int32` models of
`qa_dyna_sequence_implicit_model_repository`, byte-identical to the Bazel
build's. `python3 -m generators.gen_qa_dyna_sequence_implicit_models` from
the checkout root is the same program.
"""

import gc
import importlib.util
import pathlib
import sys

if __name__ == "__main__":  # no collection while it imports (gen_qa_implicit_models.generate)
    gc.disable()

if not __package__:  # run by file path: put the checkout, not this folder, on sys.path
    _HELPER = pathlib.Path(__file__).resolve().with_name("run_by_path.py")
    if not _HELPER.is_file():
        sys.exit(f"error: {__file__} has no run_by_path.py beside it: run the script in the"
                 " checkout's generators/ folder (or a symlink to it), not a copy")
    _SPEC = importlib.util.spec_from_file_location("<run_by_path>", _HELPER)
    _SPEC.loader.exec_module(importlib.util.module_from_spec(_SPEC))

from generators import gen_qa_implicit_models  # noqa: E402 - after the path fix above

if __name__ == "__main__":
    sys.exit(gen_qa_implicit_models.main(script=gen_qa_implicit_models.DYNA))
