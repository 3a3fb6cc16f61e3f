"""Checks a Bazel JSON execution log: which generator actions the remote cache served.

    python3 tools/check_cache_hits.py EXEC_LOG.json [--mnemonic-suffix Model]
        [--expect-local OUTPUT ... | --mixed]

Bazel 4 writes the log as concatenated JSON objects, one per spawn. By
default, exit 0 when at least one generator spawn ran and all of them were
remote cache hits. With --expect-local, the generator spawns whose output
directory ends with OUTPUT (e.g. models/<repository>/<model>) must have run
locally and every other one must have been a hit (a damaged entry rebuilt,
nothing else). With --mixed, some must have been hits and some local (a
cache lost in the middle of a build). Otherwise prints the misses and exits
1. Standard library only.
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


def matched_outputs(spawn, suffixes) -> set:
    """The suffixes that one of the spawn's output paths ends with."""
    return {suffix for out in spawn.get("listedOutputs", []) for suffix in suffixes
            if out == suffix or out.endswith("/" + suffix)}


def expectation_met(generator, misses, expect_local, mixed) -> bool:
    """Whether the hits and misses are the ones the options ask for."""
    if not generator:
        return False
    if mixed:
        return 0 < len(misses) < len(generator)
    wanted = [s for s in generator if matched_outputs(s, expect_local)]
    found = set().union(*(matched_outputs(s, expect_local) for s in wanted))
    return found == set(expect_local) and misses == wanted


def main() -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log", type=pathlib.Path)
    parser.add_argument("--mnemonic-suffix", default="Model")
    expect = parser.add_mutually_exclusive_group()
    expect.add_argument("--expect-local", action="append", default=[], metavar="OUTPUT",
                        help="output directory (path suffix) of a generator action that must"
                             " have run locally; repeatable")
    expect.add_argument("--mixed", action="store_true",
                        help="expect some generator actions served by the cache and some local")
    args = parser.parse_args()
    generator = [s for s in spawns(args.log.read_text())
                 if s.get("mnemonic", "").endswith(args.mnemonic_suffix)]
    misses = [s for s in generator if not s.get("remoteCacheHit")]
    by_mnemonic = {}
    for spawn in generator:
        by_mnemonic[spawn["mnemonic"]] = by_mnemonic.get(spawn["mnemonic"], 0) + 1
    print(f"generator spawns: {len(generator)} {by_mnemonic}; remote cache hits:"
          f" {len(generator) - len(misses)}, misses (run locally): {len(misses)}")
    for spawn in misses[:5]:
        print(f"  miss: {spawn.get('mnemonic')} {spawn.get('progressMessage', '')}"
              f" runner={spawn.get('runner')}")
    if len(misses) > 5:
        print(f"  ... and {len(misses) - 5} more misses")
    return 0 if expectation_met(generator, misses, args.expect_local, args.mixed) else 1


if __name__ == "__main__":
    sys.exit(main())
