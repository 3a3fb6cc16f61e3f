"""Checks a Bazel JSON execution log: every generator action was a remote cache hit.

    python3 tools/check_cache_hits.py EXEC_LOG.json [--mnemonic-suffix Model]

Bazel 4 writes the log as concatenated JSON objects, one per spawn. Exit 0
when at least one generator spawn ran and all of them were remote cache
hits; otherwise prints the misses and exits 1. Standard library only.
"""

import argparse
import json
import pathlib
import sys


def spawns(text: str):
    """Yield the JSON objects of a concatenated-objects execution log."""
    decoder = json.JSONDecoder()
    index = 0
    while True:
        while index < len(text) and text[index].isspace():
            index += 1
        if index >= len(text):
            return
        spawn, index = decoder.raw_decode(text, index)
        yield spawn


def main() -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log", type=pathlib.Path)
    parser.add_argument("--mnemonic-suffix", default="Model")
    args = parser.parse_args()
    generator = [s for s in spawns(args.log.read_text())
                 if s.get("mnemonic", "").endswith(args.mnemonic_suffix)]
    misses = [s for s in generator if not s.get("remoteCacheHit")]
    by_mnemonic = {}
    for spawn in generator:
        by_mnemonic[spawn["mnemonic"]] = by_mnemonic.get(spawn["mnemonic"], 0) + 1
    print(f"generator spawns: {len(generator)} {by_mnemonic}; remote cache misses: {len(misses)}")
    for spawn in misses[:20]:
        print(f"  miss: {spawn.get('mnemonic')} {spawn.get('progressMessage', '')}"
              f" runner={spawn.get('runner')}")
    return 0 if generator and not misses else 1


if __name__ == "__main__":
    sys.exit(main())
