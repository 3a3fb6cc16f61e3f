"""One hermetic Python environment: exactly its locks, nothing from the host.

Bazel runs this test once per environment (`toolchain_<env>_test`), on that
environment's toolchain. It checks that the interpreter sees no host or user
site-packages, that the installed distributions are exactly the packages of
the environment's locks at their pinned versions (so the onnx environment
holds no TensorFlow and the lint environment no numpy), and that the
launcher (the only toolchain file actions take as input) carries the sha256
of each of its locks and of no other, which is what makes a pin change
re-run the actions of this environment and of no other.
"""

import hashlib
import importlib.metadata
import os
import pathlib
import re
import site
import sys
import unittest

RUNFILES = pathlib.Path(os.environ.get("TEST_SRCDIR", "."))
ENV = os.environ.get("PYTHON_ENV", "")
LOCKS = os.environ.get("PYTHON_LOCKS", "").split()
# Installed by venv itself, not by a lock.
_BOOTSTRAP = frozenset({"pip", "setuptools"})


def _runfile(path: str) -> pathlib.Path:
    for root in (RUNFILES / os.environ.get("TEST_WORKSPACE", ""), RUNFILES):
        if (root / path).exists():
            return root / path
    raise FileNotFoundError(path)


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins() -> dict:
    pattern = re.compile(r"^([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==([^\s\\]+)", re.MULTILINE)
    pins = {}
    for lock in LOCKS:
        for name, version in pattern.findall(_runfile(lock).read_text()):
            pins[_normalize(name)] = version
    return pins


class ToolchainTest(unittest.TestCase):
    """Checks that hold for the interpreter of one environment."""

    def test_runs_in_the_named_environment(self):
        self.assertTrue(ENV and LOCKS, "PYTHON_ENV and PYTHON_LOCKS must be set by the BUILD file")
        launcher = _runfile(f"python_{ENV}/python3")
        self.assertEqual(pathlib.Path(sys.prefix).resolve(), launcher.resolve().parent / "env",
                         f"this test is not running in the {ENV} environment")

    def test_no_host_or_user_site_packages(self):
        self.assertFalse(site.ENABLE_USER_SITE)
        self.assertNotEqual(sys.prefix, sys.base_prefix, "not running in the hermetic venv")
        for entry in sys.path:
            if "site-packages" in entry or "dist-packages" in entry:
                self.assertTrue(entry.startswith(sys.prefix), f"foreign packages on sys.path: {entry}")

    def test_installed_packages_are_exactly_the_locks(self):
        pins = _pins()
        installed = {_normalize(d.metadata["Name"]): d.version
                     for d in importlib.metadata.distributions()}
        for name, version in pins.items():
            self.assertEqual(installed.get(name), version, f"{name} is not the pinned {version}")
        extra = sorted(set(installed) - set(pins) - _BOOTSTRAP)
        self.assertEqual(extra, [], f"the {ENV} environment holds packages no lock of it pins")

    def test_launcher_carries_exactly_its_locks_digests(self):
        launcher = _runfile(f"python_{ENV}/python3").read_text()
        for lock in LOCKS:
            digest = hashlib.sha256(_runfile(lock).read_bytes()).hexdigest()
            self.assertIn(f"sha256: {digest}", launcher, f"{lock} digest missing")
        self.assertEqual(len(re.findall(r"^# lock .* sha256: [0-9a-f]{64}$", launcher, re.M)),
                         len(LOCKS), "the launcher names locks this environment does not install")
        for path in (str(pathlib.Path.home()), os.getcwd()):
            self.assertNotIn(path, launcher, "launcher must not embed machine paths")


if __name__ == "__main__":
    unittest.main()
