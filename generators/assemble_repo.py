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
from typing import List, Optional

from generators.errors import GeneratorError, SpecError
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


def main(argv: Optional[List[str]] = None) -> int:
    """Command-line entry (arguments may come from an @param file)."""
    parser = argparse.ArgumentParser(description=__doc__, fromfile_prefix_chars="@")
    parser.add_argument("--out", required=True, type=pathlib.Path)
    parser.add_argument("--model", nargs=3, action="append", default=[],
                        metavar=("REPOSITORY", "MODEL_DIR", "SPEC"))
    args = parser.parse_args(argv)
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        write_manifest(args.out, assemble(args.out, args.model))
    except GeneratorError as err:
        sys.stderr.write(f"error: {err}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
