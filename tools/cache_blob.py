"""Picks, damages and checks one content-addressed blob of a Bazel HTTP cache.

    python3 tools/cache_blob.py pick EXEC_LOG.json      # prints HASH OUTPUT_DIR
    python3 tools/cache_blob.py corrupt STORE HASH      # flips one byte of cas/HASH
    python3 tools/cache_blob.py intact STORE HASH       # exit 0 iff cas/HASH hashes to HASH

`pick` reads a Bazel execution log and chooses the largest file that one
generator action (mnemonic ending in "Model") wrote and no other generator
action wrote too, so that damaging its blob touches exactly one model; it
prints the blob's SHA-256 and that action's output directory
(bazel-out/<config>/bin/models/<repository>/<model>). `corrupt` keeps the
size and changes one byte in the middle, the damage a disk or a careless
copy does and a size check misses. Used by tools/cache_safety_check.sh.
Standard library only.
"""

import argparse
import collections
import hashlib
import pathlib
import sys

from check_cache_hits import spawns


class BlobError(Exception):
    """The log or the store does not hold what the command needs."""

    def __init__(self, message: str):
        """Keeps the message."""
        super().__init__(message)


def pick(log: pathlib.Path, mnemonic_suffix: str = "Model") -> tuple[str, str]:
    """(hash, output directory) of the largest file only one generator wrote."""
    writers = collections.defaultdict(set)
    sizes = {}
    owner = {}
    for spawn in spawns(log.read_text()):
        if not spawn.get("mnemonic", "").endswith(mnemonic_suffix):
            continue
        directory = spawn["listedOutputs"][0]
        for output in spawn.get("actualOutputs", []):
            digest = output["digest"]
            writers[digest["hash"]].add(directory)
            sizes[digest["hash"]] = int(digest.get("sizeBytes", 0))
            owner[digest["hash"]] = directory
    unique = [h for h, dirs in writers.items() if len(dirs) == 1 and sizes[h] > 0]
    if not unique:
        raise BlobError(f"{log}: no non-empty generator output belongs to one action only")
    chosen = min(unique, key=lambda h: (-sizes[h], owner[h], h))
    return chosen, owner[chosen]


def blob_path(store: pathlib.Path, digest: str) -> pathlib.Path:
    """Where an nginx WebDAV store keeps the blob (Bazel's /cas/<sha256>)."""
    path = store / "cas" / digest
    if not path.is_file():
        raise BlobError(f"{path}: no such blob in the cache store")
    return path


def sha256(path: pathlib.Path) -> str:
    """Hex SHA-256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def corrupt(store: pathlib.Path, digest: str) -> str:
    """Flips every bit of the middle byte; returns the blob's new hash."""
    path = blob_path(store, digest)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    return sha256(path)


def main() -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    pick_parser = commands.add_parser("pick", help="choose a blob that one model alone owns")
    pick_parser.add_argument("log", type=pathlib.Path)
    for name in ("corrupt", "intact"):
        sub = commands.add_parser(name)
        sub.add_argument("store", type=pathlib.Path, help="the cache's directory holding ac/ and cas/")
        sub.add_argument("hash")
    args = parser.parse_args()
    try:
        if args.command == "pick":
            print(*pick(args.log))
            return 0
        if args.command == "corrupt":
            print(f"cas/{args.hash[:16]}... now hashes to {corrupt(args.store, args.hash)[:16]}...")
            return 0
        actual = sha256(blob_path(args.store, args.hash))
        print(f"cas/{args.hash[:16]}... hashes to {actual[:16]}...:"
              f" {'intact' if actual == args.hash else 'damaged'}")
        return 0 if actual == args.hash else 1
    except BlobError as error:
        print(f"cache_blob: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
