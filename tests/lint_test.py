"""Lints every Python source of the project with ruff (settings: ruff.toml).

The file list comes from the test's runfiles (the `python_sources`
filegroups of //generators, //tests and //tools), so a new module is linted
as soon as it exists.
"""

import os
import pathlib
import subprocess
import unittest

import ruff


class LintTest(unittest.TestCase):
    """ruff check must report nothing."""

    def test_ruff_clean(self):
        root = pathlib.Path(os.environ.get("TEST_SRCDIR", ".")) / os.environ.get("TEST_WORKSPACE", "")
        # Empty files are the __init__.py stubs Bazel adds to runfiles.
        sources = sorted(
            str(p.relative_to(root)) for d in ("generators", "tests", "tools")
            for p in (root / d).rglob("*.py") if p.stat().st_size
        )
        self.assertGreater(len(sources), 20, "lint found too few sources; check the data deps")
        result = subprocess.run(
            [ruff.find_ruff_bin(), "check", "--no-cache", "--config", "ruff.toml", *sources],
            cwd=root, capture_output=True, text=True, check=False,
        )
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)


if __name__ == "__main__":
    unittest.main()
