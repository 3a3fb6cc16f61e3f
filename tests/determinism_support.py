"""Shared set-up of the byte-identity tests (savedmodel and libtorch determinism).

Each builds one variant several ways, every way in its own interpreter with
its own hash seed: a one-shot generator process, the persistent worker fed
Bazel's JSON work requests back to back (no trailing newlines, as Bazel
sends them), and the standalone CLI.
"""

import json
import os
import pathlib
import subprocess
import sys
from typing import List, Optional, Sequence, Tuple

from generators.variant import Variant

ROOT = pathlib.Path(__file__).resolve().parent.parent


def spawn(args: List[str], seed: str, tmp: Optional[pathlib.Path] = None) -> subprocess.Popen:
    """Start `python <args>` from the repository root with PYTHONHASHSEED=seed (and TMPDIR)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONHASHSEED=seed)
    if tmp is not None:
        env["TMPDIR"] = str(tmp)
    return subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(process: subprocess.Popen, payload: bytes = b"") -> str:
    """Feed `payload`, wait, and return stdout; raises with stderr's tail on failure."""
    stdout, stderr = process.communicate(payload, timeout=300)
    if process.returncode != 0:
        raise RuntimeError(f"{process.args} failed:\n{stderr.decode()[-3000:]}")
    return stdout.decode()


def worker_payload(out: pathlib.Path, requests: Sequence[Tuple[Variant, str]]) -> bytes:
    """Bazel's JSON work requests building each (variant, directory under out), in order."""
    return "".join(
        json.dumps({"arguments": ["--spec", v.to_json(), "--out", str(out / d)], "requestId": i})
        for i, (v, d) in enumerate(requests, 1)).encode()


def build_all_ways(out: pathlib.Path, generator: str, variant: Variant, cli_script: str,
                   requests: Sequence[Tuple[Variant, str]],
                   tmp: Optional[pathlib.Path] = None) -> List[dict]:
    """Build concurrently, each in its own interpreter and hash seed; returns the worker's answers.

    `variant` by a one-shot `python -m <generator>` into out/fresh; `cli_script`
    (run with `python -c`, out/cli as its argument); and `requests` by the
    generator's persistent worker, each into its directory under out.
    """
    module = ["-m", generator]
    fresh = spawn([*module, "--spec", variant.to_json(), "--out", str(out / "fresh")], "1", tmp)
    cli = spawn(["-c", cli_script, str(out / "cli")], "2", tmp)
    worker = spawn([*module, "--persistent_worker"], "3", tmp)
    responses = [json.loads(line) for line in finish(worker, worker_payload(out, requests)).splitlines()]
    finish(fresh)
    finish(cli)
    return responses
