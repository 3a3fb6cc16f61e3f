"""Where the tests find the generated model repositories.

Under Bazel the test's `env` sets IMPLICIT_REPO to the runfiles path of
`//models:implicit_repo` (repository directories plus manifest.json). Run by
hand, the tests generate the same tree once per process with the standalone
CLI into a temporary directory.
"""

import atexit
import functools
import os
import pathlib
import shutil
import tempfile

from generators import gen_qa_implicit_models
from generators.variant import Backend

ENV_VAR = "IMPLICIT_REPO"


@functools.lru_cache(maxsize=None)
def implicit_repo(backends: tuple = ("onnx",)) -> pathlib.Path:
    """Root of the built repositories; generated with the CLI when not under Bazel."""
    if os.environ.get(ENV_VAR):
        return pathlib.Path(os.environ[ENV_VAR]).resolve()
    root = pathlib.Path(tempfile.mkdtemp(prefix="implicit_repo."))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    flags = [gen_qa_implicit_models.backend_flag(Backend(b)) for b in backends]
    if gen_qa_implicit_models.main(["--models_dir", str(root), "--all", *flags]) != 0:
        raise RuntimeError(f"generating {backends} models into {root} failed")
    return root
