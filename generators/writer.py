"""Writes model directories: model files first, `config.pbtxt` last.

`write_model_dir` fills a given empty directory (a Bazel tree artifact).
`RepositoryUpdate` installs several models (and a manifest) into a
repository as one change: each is built in a hidden staging tree inside the
repository, and only when every one is built are they renamed into place.
If anything fails, building or renaming, the repository is left as it was:
staged models never show, models already renamed in are taken out again, the
models they replaced are put back, and the directories the update created
are removed. `install_model` is such an update of one model.
"""

import contextlib
import os
import pathlib
import shutil
import tempfile
from typing import List, Optional, Tuple

from generators.backends import builder_for
from generators.build_options import MODEL_VERSION, BuildOptions
from generators.errors import OutputDirError
from generators.model_config import build_config, config_text, initial_state_files
from generators.variant import InitialState, Variant


def write_model_dir(variant: Variant, options: BuildOptions, model_dir: pathlib.Path) -> None:
    """Write the whole model (version dir, initial state, config) into model_dir."""
    version_dir = model_dir / str(MODEL_VERSION)
    version_dir.mkdir(parents=True)
    builder_for(variant.backend).write_model(variant, options, version_dir)
    if variant.initial_state is InitialState.FILE:
        state_dir = model_dir / "initial_state"
        state_dir.mkdir()
        for name, data in initial_state_files(variant).items():
            (state_dir / name).write_bytes(data)
    # Last, so a polling server never sees a config without its model.
    (model_dir / "config.pbtxt").write_text(config_text(build_config(variant)))


def check_output_dir(path: pathlib.Path, create: bool = True) -> None:
    """Fail with a clear error unless path is (or can be made) a writable dir."""
    if path.exists() and not path.is_dir():
        raise OutputDirError(f"'{path}' is not a directory; pass a directory as --models_dir")
    if create:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise OutputDirError(
                f"cannot create '{path}' ({err.strerror}); pass a --models_dir you can write to"
            ) from None
    if not path.is_dir():
        raise OutputDirError(f"'{path}' is not a directory; pass a directory as --models_dir")
    if not os.access(path, os.W_OK | os.X_OK):
        raise OutputDirError(f"'{path}' is not writable; fix its permissions or pick another")


def _missing_dirs(path: pathlib.Path) -> List[pathlib.Path]:
    """The path and those of its ancestors that do not exist, deepest first."""
    missing = []
    while not os.path.lexists(path) and path.parent != path:
        missing.append(path)
        path = path.parent
    return missing


class RepositoryUpdate:
    """Models staged inside a repository, renamed into place together or not at all.

    Use it as a context manager: build each model in the path `stage`
    returns; leaving the block normally installs them all in the order
    staged (each replacing a previous one of its name), leaving it with an
    exception restores the repository as it was before the block.

    The staging tree holds `new`, the staged models as the repository lays
    them out, and `old`, the models they replace, made only when there are
    any: on ext4 a folder made and removed again within a run costs up to a
    millisecond, so an update makes no folder it does not need.
    """

    def __init__(self, root: pathlib.Path) -> None:
        self.root = pathlib.Path(root)
        self._created: List[pathlib.Path] = []  # deepest first, removed on failure
        self._staging: Optional[pathlib.Path] = None
        self._staged: List[pathlib.PurePath] = []
        self._installed: List[Tuple[pathlib.PurePath, bool]] = []  # (relative, replaced)

    def __enter__(self) -> "RepositoryUpdate":
        """Create the repository if missing and a staging tree inside it."""
        self._created = _missing_dirs(self.root)
        try:
            check_output_dir(self.root)
            self._staging = pathlib.Path(tempfile.mkdtemp(prefix=".staging.", dir=self.root))
        except BaseException:
            self._remove_created()
            raise
        return self

    def stage(self, relative: str) -> pathlib.Path:
        """The path to build `root/relative` in; it does not exist yet, its parent does.

        Raises:
            OutputDirError: the final place's folder exists but is not a
                writable directory (checked now, before anything is built).
        """
        relative_path = pathlib.PurePath(relative)
        parent = (self.root / relative_path).parent
        if os.path.lexists(parent):
            check_output_dir(parent, create=False)
        target = self._new / relative_path
        target.parent.mkdir(parents=True, exist_ok=True)
        self._staged.append(relative_path)
        return target

    def __exit__(self, exc_type, exc, traceback) -> None:
        """Install everything staged, or restore the repository on any error."""
        if exc_type is not None:
            self._restore()
            return
        try:
            self._install_all()
        except BaseException:
            self._restore()
            raise
        shutil.rmtree(self._staging, ignore_errors=True)  # now only the replaced models

    @property
    def _new(self) -> pathlib.Path:
        return self._staging / "new"

    @property
    def _old(self) -> pathlib.Path:
        return self._staging / "old"

    def _install_all(self) -> None:
        for relative in self._staged:
            final, aside = self.root / relative, self._old / relative
            self._created[:0] = _missing_dirs(final.parent)
            try:
                final.parent.mkdir(parents=True, exist_ok=True)
                replaced = os.path.lexists(final)
                if replaced:
                    aside.parent.mkdir(parents=True, exist_ok=True)
                    os.rename(final, aside)
                # From here on `_restore` puts the previous one back, even if the next rename fails.
                self._installed.append((relative, replaced))
                os.rename(self._new / relative, final)
            except OSError as err:
                raise OutputDirError(
                    f"cannot install '{final}' ({err.strerror or err}); nothing was installed and"
                    f" '{self.root}' is as it was before; free space or fix permissions and rerun"
                ) from None

    def _restore(self) -> None:
        """Take out what was installed, put back what it replaced, drop staging and new dirs."""
        trash = self._staging / "trash"
        failed = []
        for relative, replaced in reversed(self._installed):
            final = self.root / relative
            try:
                if os.path.lexists(final):  # absent when the new one's rename failed
                    (trash / relative).parent.mkdir(parents=True, exist_ok=True)
                    os.rename(final, trash / relative)
                if replaced:
                    os.rename(self._old / relative, final)
            except OSError as err:
                failed.append(f"'{final}' ({err.strerror or err})")
        self._installed = []
        if failed:
            # Keep the staging tree: it holds the previous models that could not go back.
            raise OutputDirError(
                f"could not restore {', '.join(failed)} after a failed run; their previous"
                f" versions are kept under '{self._old}': move them back by hand")
        shutil.rmtree(self._staging, ignore_errors=True)
        self._remove_created()

    def _remove_created(self) -> None:
        for directory in self._created:
            with contextlib.suppress(OSError):  # not empty: something else wrote there
                directory.rmdir()


def install_model(variant: Variant, options: BuildOptions, repository: pathlib.Path) -> pathlib.Path:
    """Build a model beside its final place and rename it in; returns its path.

    On any error the repository is as it was: a model of the same name that
    was there before stays there, byte for byte.
    """
    with RepositoryUpdate(repository) as update:
        write_model_dir(variant, options, update.stage(variant.name))
    return repository / variant.name
