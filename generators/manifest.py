"""The repository manifest: every model with its variant and file digests.

Bazel's assemble step and the standalone CLI (`--all`) both write it with
`write_manifest`, so comparing two manifests compares two builds byte for
byte.
"""

import hashlib
import json
import pathlib
from typing import Iterable

from generators.matrix import Entry

MANIFEST_NAME = "manifest.json"


def file_digests(model_dir: pathlib.Path) -> dict:
    """sha256 of every file under a model directory, keyed by relative path."""
    return {
        path.relative_to(model_dir).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(model_dir.rglob("*"))
        if path.is_file()
    }


def manifest(root: pathlib.Path, entries: Iterable[Entry]) -> dict:
    """Manifest of the models of `entries` as laid out under root."""
    models = []
    for entry in sorted(entries, key=lambda e: (e.repository, e.variant.name)):
        model_dir = root / entry.repository / entry.variant.name
        models.append({
            "repository": entry.repository,
            "name": entry.variant.name,
            "variant": entry.variant.to_spec(),
            "files": file_digests(model_dir),
        })
    return {"models": models}


def write_manifest(root: pathlib.Path, entries: Iterable[Entry]) -> pathlib.Path:
    """Write root/manifest.json (sorted, stable text) and return its path."""
    path = root / MANIFEST_NAME
    path.write_text(json.dumps(manifest(root, entries), indent=2, sort_keys=True) + "\n")
    return path
