"""Lints the project's sources: Python with ruff, Starlark with buildifier.

ruff (settings: ruff.toml) checks every Python source in the test's
runfiles (the `python_sources` filegroups of //generators, //tests,
//tools and //verification), so a new module is linted as soon as it exists.

buildifier (pinned by the npm lock in third_party/buildifier, installed into
@buildifier by `npm ci`) checks every BUILD, .bzl and WORKSPACE file of the
workspace (@starlark_files) with `--mode=check --lint=warn`. The files are
laid out under their own paths first, so buildifier picks each file's type
from its name and its messages name the files as they are in the checkout.
A file it would reformat, or a warning not suppressed where it stands (with
its reason), fails the test.
"""

import json
import os
import pathlib
import re
import subprocess
import tempfile
import unittest

import ruff

_RUNFILES = pathlib.Path(os.environ.get("TEST_SRCDIR", "."))
_ROOT = _RUNFILES / os.environ.get("TEST_WORKSPACE", "")

_FIX = (
    "To reformat and apply the automatic fixes:\n"
    '  ./bazelw run @buildifier//:buildifier -- --mode=fix --lint=fix -r "$PWD"\n'
    "A warning that must stay is suppressed where it stands, with its reason:\n"
    "  # buildifier: disable=<category> (why it cannot be fixed)"
)


def _runfile(rootpath: str) -> pathlib.Path:
    """The file that `$(rootpath ...)` names, for main-repository and external labels alike."""
    if rootpath.startswith("../"):
        return _RUNFILES / rootpath[3:]
    return _ROOT / rootpath


class RuffTest(unittest.TestCase):
    """ruff check must report nothing."""

    def test_ruff_clean(self):
        # Empty files are the __init__.py stubs Bazel adds to runfiles.
        sources = sorted(
            str(p.relative_to(_ROOT))
            for d in ("generators", "tests", "third_party", "tools", "verification")
            for p in (_ROOT / d).rglob("*.py") if p.stat().st_size
        )
        self.assertGreater(len(sources), 20, "lint found too few sources; check the data deps")
        result = subprocess.run(
            [ruff.find_ruff_bin(), "check", "--no-cache", "--config", "ruff.toml", *sources],
            cwd=_ROOT, capture_output=True, text=True, check=False,
        )
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)


class BuildifierTest(unittest.TestCase):
    """buildifier --mode=check --lint=warn must report nothing for any Starlark file."""

    @classmethod
    def setUpClass(cls):
        cls.buildifier = _runfile(os.environ["BUILDIFIER"])
        manifest_path = _runfile(os.environ["STARLARK_MANIFEST"])
        manifest = json.loads(manifest_path.read_text())
        cls.files = manifest["files"]
        links = manifest_path.parent / "files"
        cls.links = {path: links / (path + manifest["link_suffix"]) for path in cls.files}

    def test_buildifier_is_the_locked_version(self):
        lock = json.loads(_runfile(os.environ["BUILDIFIER_LOCK"]).read_text())
        locked = lock["packages"]["node_modules/@bazel/buildifier"]["version"]
        reported = subprocess.run(
            [self.buildifier, "--version"], capture_output=True, text=True, check=True,
        ).stdout
        self.assertRegex(reported, rf"^buildifier version: {re.escape(locked)}\s")

    def test_every_starlark_file_is_given(self):
        # Catches a broken data wiring, which would otherwise pass on nothing.
        for expected in ("WORKSPACE", "BUILD.bazel", "tests/BUILD.bazel", "third_party/python/defs.bzl"):
            self.assertIn(expected, self.files)
        self.assertGreater(len(self.files), 20)
        missing = [path for path, link in self.links.items() if not link.is_file()]
        self.assertEqual(missing, [], "in @starlark_files' manifest but not in the test's runfiles")

    def test_formatted_and_lint_clean(self):
        with tempfile.TemporaryDirectory() as tree:
            for path, link in self.links.items():
                target = pathlib.Path(tree, path)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.symlink_to(link)
            result = subprocess.run(
                [self.buildifier, "--mode=check", "--lint=warn", *self.files],
                cwd=tree, capture_output=True, text=True, check=False,
            )
        self.assertEqual(
            result.returncode, 0,
            f"buildifier (exit {result.returncode}):\n{result.stdout}{result.stderr}\n{_FIX}",
        )


if __name__ == "__main__":
    unittest.main()
