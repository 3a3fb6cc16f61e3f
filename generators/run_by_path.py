"""Puts this checkout on sys.path for a script run by file path.

Upstream's pipeline runs `python3 $SRCDIR/gen_qa_implicit_models.py ...`
(and the dyna script) from any working directory with no PYTHONPATH. Python
then puts the script's own folder, `generators/`, first on sys.path (unless
`-P`), where `generators` itself cannot be imported and this package's
modules would shadow same-named ones. Both scripts load this file (by
`importlib`, from its cached bytecode: `runpy.run_path` would compile it and
import pkgutil on every run) before importing anything else; it drops that
folder from sys.path and puts the checkout root first: the folder above the
script as invoked, or above the file a symlink to the script names.
"""

import os
import sys


def _is_folder(path: str, folder: os.stat_result) -> bool:
    """Whether `path` names `folder` (by device and inode: a stat, not a realpath, per entry)."""
    try:
        return os.path.samestat(os.stat(path or os.curdir), folder)
    except OSError:  # a missing entry (python311.zip) is no folder
        return False


def use_checkout(script: str) -> None:
    """Make `generators` importable from the checkout that holds `script`."""
    here = os.stat(os.path.dirname(os.path.realpath(script)))
    sys.path[:] = [p for p in sys.path if not _is_folder(p, here)]
    for path in (os.path.abspath(script), os.path.realpath(script)):
        root = os.path.dirname(os.path.dirname(path))
        if os.path.isfile(os.path.join(root, "generators", "__init__.py")):
            sys.path.insert(0, root)
            return
    sys.exit(f"error: {script} is not inside a checkout (no generators/__init__.py above it)")


if __name__ == "<run_by_path>":  # loaded by a script run by file path
    use_checkout(sys.modules["__main__"].__file__)
