"""Expands the variant matrix (`configs/matrix.json`) into concrete variants.

The matrix is data: one entry per model repository, listing the shape,
batching, initial state, strategy, dtypes and backends it holds, and
optionally `state_pair_sets` (one model per set of state pairs),
`initial_state_dims` (the file initial state's own dims under a variable
state), `state_dtypes` (dtype -> the state's wider dtype), `state_dims_sets`
(one model per state dims unlike INPUT's) and `same_buffer`
(use_same_buffer_for_input_output), and `flags_select: false` for a
repository that upstream-style CLI flags never select (built by Bazel and
`--all` only: the state-coverage repositories, whose models share names and
flags with upstream's). Both the
Bazel repository rule (which turns the expansion into `VARIANTS` for the
macros) and the standalone CLI call `expand`, so the two can never disagree.
Standard library only: the repository rule runs it with a bare interpreter.
"""

import argparse
import collections
import dataclasses
import itertools
import json
import pathlib
import sys
from typing import FrozenSet, Iterable, List, Mapping, Optional

from generators.errors import SpecError
from generators.variant import Backend, DType, Variant, backend_builds

MATRIX_PATH = pathlib.Path(__file__).resolve().parent.parent / "configs" / "matrix.json"
_REPO_KEYS = {
    "name", "shape", "max_batch", "initial_state", "strategy", "backends", "dtypes",
    "state_pair_sets", "initial_state_dims", "state_dtypes", "state_dims_sets", "same_buffer",
    "flags_select", "comment",
}


@dataclasses.dataclass(frozen=True, kw_only=True)
class Entry:
    """A variant together with the repository directory it belongs to."""

    repository: str
    variant: Variant
    # Whether upstream's flags (--variable, --initial-state, ...) select it;
    # a repository with `"flags_select": false` is built by Bazel and `--all` only.
    flags_select: bool = True

    def to_spec(self) -> dict:
        """JSON-ready form used by Bazel: repository, name, flags and spec."""
        return {
            "repository": self.repository,
            "name": self.variant.name,
            "backend": self.variant.backend.value,
            "gpu_only": self.variant.gpu_only,
            "spec": self.variant.to_json(),
        }


def load_matrix(path: pathlib.Path = MATRIX_PATH) -> dict:
    """Read and minimally check the matrix file."""
    try:
        matrix = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise SpecError(f"cannot read matrix {path}: {err}") from None
    if not isinstance(matrix.get("repositories"), list):
        raise SpecError(f"matrix {path} needs a 'repositories' list")
    return matrix


def _repository_entries(repo: Mapping, default_dtypes: Iterable[str],
                        backends: Optional[FrozenSet[Backend]] = None) -> List[Entry]:
    unknown = sorted(set(repo) - _REPO_KEYS)
    if unknown:
        raise SpecError(f"repository {repo.get('name')!r} has unknown keys {unknown}")
    entries = []
    for backend_name in repo["backends"]:
        backend = Backend(backend_name)
        if backends is not None and backend not in backends:
            continue
        for dtype_name in repo.get("dtypes", default_dtypes):
            state_dtype = repo.get("state_dtypes", {}).get(dtype_name)
            for max_batch, state_pairs, state_dims in itertools.product(
                repo["max_batch"], repo.get("state_pair_sets", [None]),
                repo.get("state_dims_sets", [None]),
            ):
                if not all(backend_builds(backend, DType(name), max_batch)
                           for name in filter(None, (dtype_name, state_dtype))):
                    continue
                spec = {
                    "backend": backend_name,
                    "dtype": dtype_name,
                    "shape": repo["shape"],
                    "max_batch": max_batch,
                    "initial_state": repo["initial_state"],
                    "strategy": repo["strategy"],
                }
                if state_pairs is not None:
                    spec["state_pairs"] = state_pairs
                if "initial_state_dims" in repo:
                    spec["initial_state_dims"] = repo["initial_state_dims"]
                if state_dtype is not None:
                    spec["state_dtype"] = state_dtype
                if state_dims is not None:
                    spec["state_dims"] = state_dims
                if repo.get("same_buffer"):
                    spec["same_buffer"] = True
                entries.append(Entry(repository=repo["name"], variant=Variant.from_spec(spec),
                                     flags_select=repo.get("flags_select", True)))
    return entries


def expand(matrix: Optional[Mapping] = None,
           backends: Optional[Iterable[Backend]] = None,
           flags_selected_only: bool = False) -> List[Entry]:
    """Every (repository, variant) the matrix describes, in a stable order.

    With `backends`, only theirs (the CLI's selection: a one-backend run
    builds no other backend's variants); with `flags_selected_only`, only
    the repositories upstream-style flags can select (a flag line never
    builds the state-coverage repositories' variants).
    """
    matrix = load_matrix() if matrix is None else matrix
    wanted = None if backends is None else frozenset(backends)
    entries = []
    for repo in matrix["repositories"]:
        if flags_selected_only and not repo.get("flags_select", True):
            continue
        entries.extend(_repository_entries(repo, matrix["dtypes"], wanted))
    counts = collections.Counter((e.repository, e.variant.name) for e in entries)
    duplicates = sorted(k for k, n in counts.items() if n > 1)
    if duplicates:
        raise SpecError(f"matrix lists the same model twice: {duplicates}")
    return entries


def main(argv: Optional[List[str]] = None) -> int:
    """Print the expansion as a Starlark file defining `VARIANTS`."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--matrix", type=pathlib.Path, default=MATRIX_PATH)
    args = parser.parse_args(argv)
    specs = [entry.to_spec() for entry in expand(load_matrix(args.matrix))]
    sys.stdout.write('"""Generated from configs/matrix.json by generators/matrix.py."""\n\n')
    # repr() of str/bool/list/dict values is valid Starlark (json's true is not).
    sys.stdout.write("VARIANTS = [\n")
    for spec in specs:
        sys.stdout.write(f"    {dict(sorted(spec.items()))!r},\n")
    sys.stdout.write("]\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
