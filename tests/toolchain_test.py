"""The hermetic Python toolchain: pinned packages only, lock digest in the key.

Under Bazel this test runs on the registered toolchain. It checks that the
interpreter sees no host or user site-packages, that the imported packages
are the lock's exact versions, and that the launcher (the only toolchain
file actions take as input) carries the lock's sha256, which is what makes
a lock edit invalidate every action that runs Python.
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
LOCK = "third_party/python/requirements_lock.txt"


def _runfile(path: str) -> pathlib.Path:
    for root in (RUNFILES / os.environ.get("TEST_WORKSPACE", ""), RUNFILES):
        if (root / path).exists():
            return root / path
    raise FileNotFoundError(path)


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins():
    pattern = re.compile(r"^([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==([^\s\\]+)", re.MULTILINE)
    return dict(pattern.findall(_runfile(LOCK).read_text()))


class ToolchainTest(unittest.TestCase):
    """Checks that hold for the interpreter every action and test runs on."""

    def test_no_host_or_user_site_packages(self):
        self.assertFalse(site.ENABLE_USER_SITE)
        self.assertNotEqual(sys.prefix, sys.base_prefix, "not running in the hermetic venv")
        for entry in sys.path:
            if "site-packages" in entry or "dist-packages" in entry:
                self.assertTrue(entry.startswith(sys.prefix), f"foreign packages on sys.path: {entry}")

    def test_packages_match_the_lock(self):
        pins = _pins()
        self.assertIn("onnx", pins)
        installed = {_normalize(d.metadata["Name"]): d.version
                     for d in importlib.metadata.distributions()}
        for name, version in pins.items():
            key = _normalize(name)
            if key in ("pip", "setuptools"):
                continue
            self.assertEqual(installed.get(key), version, f"{name} is not the pinned {version}")

    def test_launcher_carries_lock_digest(self):
        digest = hashlib.sha256(_runfile(LOCK).read_bytes()).hexdigest()
        launcher = _runfile("implicit_python/python3").read_text()
        self.assertIn(f"lock sha256: {digest}", launcher)
        self.assertNotIn(str(pathlib.Path.home()), launcher, "launcher must not embed machine paths")


if __name__ == "__main__":
    unittest.main()
