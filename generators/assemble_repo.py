"""Bazel tool: merge generated model directories into the repository tree.

    assemble_repo --out DIR --model REPOSITORY MODEL_DIR SPEC [--model ...]

copies each model directory to DIR/REPOSITORY/<model name> and writes
DIR/manifest.json (generators/manifest.py), the same manifest the standalone
CLI writes with `--all`.
"""

import argparse
import os
import pathlib
import shutil
import sys
from typing import List, Optional, Tuple

from generators import worker
from generators.errors import SpecError
from generators.manifest import write_manifest
from generators.matrix import Entry
from generators.variant import Variant


def copy_tree(source: pathlib.Path, target: pathlib.Path) -> None:
    """Copy file contents only: Bazel's read-only modes must not carry over."""
    for directory, _, files in os.walk(source):
        relative = pathlib.Path(directory).relative_to(source)
        (target / relative).mkdir(parents=True, exist_ok=True)
        for name in sorted(files):
            shutil.copyfile(pathlib.Path(directory, name), target / relative / name)


def assemble(out: pathlib.Path, models: List[List[str]]) -> List[Entry]:
    """Copy every model into place; returns the manifest entries."""
    entries = []
    for repository, model_dir, spec in models:
        variant = Variant.from_json(spec)
        source = pathlib.Path(model_dir)
        if source.name != variant.name:
            raise SpecError(f"model directory '{source}' does not match model name '{variant.name}'")
        copy_tree(source, out / repository / variant.name)
        entries.append(Entry(repository=repository, variant=variant))
    return entries


def run(argv: List[str]) -> Tuple[int, str]:
    """Assemble one repository tree; returns (exit code, message)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=pathlib.Path)
    parser.add_argument("--model", nargs=3, action="append", default=[],
                        metavar=("REPOSITORY", "MODEL_DIR", "SPEC"))

    def assemble_tree() -> None:
        args = parser.parse_args(argv)
        args.out.mkdir(parents=True, exist_ok=True)
        write_manifest(args.out, assemble(args.out, args.model))

    # As generate_model's handler: an OSError (a full disk) is an answer, not the worker's end.
    return worker.guarded(assemble_tree)


def main(argv: Optional[List[str]] = None) -> int:
    """Command-line entry: one run, or a persistent worker."""
    argv = sys.argv[1:] if argv is None else argv
    if "--persistent_worker" in argv:
        return worker.serve(run)
    code, message = run(worker.expand_param_file(argv))
    sys.stderr.write(message)
    return code


if __name__ == "__main__":
    sys.exit(main())
