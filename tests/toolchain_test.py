"""One hermetic Python environment: exactly its locks, nothing from the host.

Bazel runs this test once per environment (`toolchain_<env>_test`), on that
environment's toolchain. It checks that the interpreter sees no host or user
site-packages, that the installed distributions are exactly the packages of
the environment's locks at their pinned versions (so the onnx environment
holds no TensorFlow and the lint environment no numpy), and that the
launcher (the only toolchain file actions take as input) carries the sha256
of each of its locks and of no other, which is what makes a pin change
re-run the actions of this environment and of no other.

Under `--config=gpu` (IMPLICIT_GPU=1) the environments with a GPU group
(plan, cli) also hold generators/backends/plan/requirements_gpu.in. Their
launcher then names that file and its sha256, and the test accepts exactly
its pins beyond the locks: tensorrt's own packages are listed there, so
they are not extras, and anything else still is. Without the group the
launcher says "none" and its packages count as extras like any other.
toolchain_gpu_group_test runs these checks on both cases without a GPU.
"""

import hashlib
import importlib.metadata
import os
import pathlib
import re
import site
import sys
import unittest
from typing import Dict, List, Optional

RUNFILES = pathlib.Path(os.environ.get("TEST_SRCDIR", "."))
ENV = os.environ.get("PYTHON_ENV", "")
LOCKS = os.environ.get("PYTHON_LOCKS", "").split()
# The environment's GPU group ("" where it has none), installed only with IMPLICIT_GPU=1.
GPU_REQUIREMENTS = os.environ.get("PYTHON_GPU_REQUIREMENTS", "")
# Installed by venv itself, not by a lock.
_BOOTSTRAP = frozenset({"pip", "setuptools"})


def _runfile(path: str) -> pathlib.Path:
    for root in (RUNFILES / os.environ.get("TEST_WORKSPACE", ""), RUNFILES):
        if (root / path).exists():
            return root / path
    raise FileNotFoundError(path)


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(paths: List[pathlib.Path]) -> Dict[str, str]:
    """Each pinned name and its version, from the `name[extras]==version` lines of the files."""
    pattern = re.compile(r"^([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==([^\s\\]+)", re.MULTILINE)
    pins = {}
    for path in paths:
        for name, version in pattern.findall(path.read_text()):
            pins[_normalize(name)] = version
    return pins


def installed_gpu_group(launcher: str,
                        gpu_requirements: Optional[pathlib.Path]) -> List[pathlib.Path]:
    """The GPU group the launcher says its rule installed: [] or [gpu_requirements].

    Raises AssertionError when the launcher names a group this environment
    does not have, or a digest other than the file's.
    """
    (line,) = re.findall(r"^# gpu requirements: (.*)$", launcher, re.MULTILINE)
    if line == "none":
        return []
    if gpu_requirements is None:
        raise AssertionError(f"the launcher names a GPU group ({line}) this environment has none of")
    digest = hashlib.sha256(gpu_requirements.read_bytes()).hexdigest()
    if line != f"{gpu_requirements.name} sha256 {digest}":
        raise AssertionError(
            f"the launcher's GPU group '{line}' is not {gpu_requirements.name} at sha256 {digest}")
    return [gpu_requirements]


def unpinned_or_mismatched(installed: Dict[str, str], pins: Dict[str, str]) -> List[str]:
    """What breaks "the installed distributions are exactly the pins", one line each."""
    problems = [f"{name} is {installed.get(name)}, not the pinned {version}"
                for name, version in sorted(pins.items()) if installed.get(name) != version]
    problems += [f"{name} {installed[name]} is installed but no lock pins it"
                 for name in sorted(set(installed) - set(pins) - _BOOTSTRAP)]
    return problems


def _allowed_pins() -> Dict[str, str]:
    launcher = _runfile(f"python_{ENV}/python3").read_text()
    gpu = _runfile(GPU_REQUIREMENTS) if GPU_REQUIREMENTS else None
    return read_pins([_runfile(lock) for lock in LOCKS] + installed_gpu_group(launcher, gpu))


class ToolchainTest(unittest.TestCase):
    """Checks that hold for the interpreter of one environment."""

    def test_runs_in_the_named_environment(self):
        self.assertTrue(ENV and LOCKS, "PYTHON_ENV and PYTHON_LOCKS must be set by the BUILD file")
        launcher = _runfile(f"python_{ENV}/python3").read_text()
        (digest,) = re.findall(r"^# environment: ([0-9a-f]{64})$", launcher, re.MULTILINE)
        self.assertEqual(pathlib.Path(sys.prefix).name, digest,
                         f"this test is not running in the {ENV} environment's store entry")
        self.assertTrue((pathlib.Path(sys.prefix) / ".complete").is_file(),
                        "running in an environment that was never marked complete")

    def test_no_host_or_user_site_packages(self):
        self.assertFalse(site.ENABLE_USER_SITE)
        self.assertNotEqual(sys.prefix, sys.base_prefix, "not running in the hermetic venv")
        # A composed environment (cli) reaches its components' site-packages,
        # which live beside it in the store; nothing else.
        store = pathlib.Path(sys.prefix).parent
        for entry in sys.path:
            if "site-packages" in entry or "dist-packages" in entry:
                self.assertEqual(pathlib.Path(entry).parents[2].parent, store,
                                 f"foreign packages on sys.path: {entry}")

    def test_installed_packages_are_exactly_the_locks(self):
        installed = {}
        for dist in importlib.metadata.distributions():
            # The first on sys.path is the one imports get (a composed
            # environment sees its components' copies of pip and setuptools).
            installed.setdefault(_normalize(dist.metadata["Name"]), dist.version)
        self.assertEqual(unpinned_or_mismatched(installed, _allowed_pins()), [],
                         f"the {ENV} environment is not exactly its locks (and GPU group)")

    def test_launcher_carries_exactly_its_locks_digests(self):
        launcher = _runfile(f"python_{ENV}/python3").read_text()
        for lock in LOCKS:
            digest = hashlib.sha256(_runfile(lock).read_bytes()).hexdigest()
            self.assertIn(f"sha256: {digest}", launcher, f"{lock} digest missing")
        self.assertEqual(len(re.findall(r"^# lock .* sha256: [0-9a-f]{64}$", launcher, re.M)),
                         len(LOCKS), "the launcher names locks this environment does not install")
        for path in (str(pathlib.Path.home()), os.getcwd(), str(pathlib.Path(sys.prefix).parent)):
            self.assertNotIn(path, launcher, "launcher must not embed machine paths")


if __name__ == "__main__":
    unittest.main()
