"""The machine's store of hermetic Python environments, keyed by what defines them.

Two commands, both run with the base interpreter and the standard library only:

- `spec REQUEST SPEC` (the `python_env` repository rule, at fetch time): reads
  the request (the environment's name, its lock files with their labels, its
  GPU group, the environments it is composed of) and writes the spec: the
  base interpreter's description and the environment's digest, the sha256 of
  its locks' contents, its GPU group, its components' digests and the base
  interpreter's version, platform and cache tag. Nothing is installed.
- `ensure SPEC` (the launcher, the first time an action or test runs in the
  environment on this machine): creates `<store>/<digest>` unless it is
  complete.

Creation holds an exclusive lock on `<store>/.locks/<digest>.lock`, so
actions, tests and workers needing the same environment at once create it
once; the others wait, then find it complete. A venv is not relocatable, so
it is made at its final path and marked complete (`.complete`) last: a
creation that was interrupted leaves a folder without the marker, which the
next creator removes (under the lock) and makes again. Installs are pip's
`--require-hashes --no-deps --only-binary=:all:` of the locks, as before;
the GPU group (pinned by version only, see python_env_private.bzl) follows
with `--no-deps`. A composed environment (the `cli` one) installs nothing
itself: a `.pth` file adds its components' site-packages, so their packages
exist once on the machine.
"""

import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig

# Bumped when the store's layout or an environment's content rule changes.
STORE_FORMAT = 1
COMPLETE = ".complete"
COMPONENTS_PTH = "_implicit_env_components.pth"


class StoreError(Exception):
    """An environment could not be made; the message names it and the way out."""


def _sha256(path):
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def _describe():
    version = "%d.%d.%d" % sys.version_info[:3]
    return {
        "executable": sys.executable,
        "version": version,
        "platform": sysconfig.get_platform(),
        "cache_tag": sys.implementation.cache_tag,
    }


def make_spec(request, interpreter=None):
    """The spec of one environment (and, recursively, of its components)."""
    interpreter = interpreter or _describe()
    locks = [dict(lock, sha256=_sha256(lock["path"])) for lock in request.get("locks", [])]
    gpu = request.get("gpu")
    if gpu:
        gpu = dict(gpu, sha256=_sha256(gpu["path"]))
    components = [make_spec(c, interpreter) for c in request.get("components", [])]
    key = {
        "format": STORE_FORMAT,
        "python": [interpreter["version"], interpreter["platform"], interpreter["cache_tag"]],
        "locks": [lock["sha256"] for lock in locks],
        "gpu": gpu["sha256"] if gpu else None,
        "components": [c["digest"] for c in components],
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
    return {
        "name": request["name"],
        "digest": digest,
        "store": request["store"],
        "interpreter": interpreter,
        "locks": locks,
        "gpu": gpu,
        "components": components,
    }


def _say(spec, text):
    sys.stderr.write(f"python_env {spec['name']}: {text}\n")
    sys.stderr.flush()


def _writable_store(spec):
    """Create the store folder (0700, ours) or explain why it cannot be written."""
    store = spec["store"]
    try:
        os.makedirs(os.path.join(store, ".locks"), mode=0o700, exist_ok=True)
    except OSError as err:
        hint = ""
        if err.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            hint = ("; inside Bazel's sandbox only /tmp is writable: keep IMPLICIT_ENV_STORE under"
                    f" /tmp, or add `build --sandbox_writable_path={store}` to user.bazelrc")
        raise StoreError(f"cannot write the environment store {store} ({err.strerror}){hint}") from None
    info = os.stat(store)
    if info.st_uid != os.getuid() or info.st_mode & 0o022:
        raise StoreError(
            f"the environment store {store} belongs to uid {info.st_uid} or is writable by others"
            f" (mode {info.st_mode & 0o777:o}); remove it or set IMPLICIT_ENV_STORE to a folder of"
            " your own")
    return store


def site_packages(env_dir, spec):
    """The site-packages folder of a venv made by `spec`'s base interpreter."""
    major_minor = ".".join(spec["interpreter"]["version"].split(".")[:2])
    return os.path.join(env_dir, "lib", f"python{major_minor}", "site-packages")


def _run(spec, args, what, environment=None):
    done = subprocess.run(args, capture_output=True, text=True, check=False,
                          env=dict(os.environ, **(environment or {})))
    if done.returncode != 0:
        raise StoreError(f"{spec['name']}: {what} failed (exit {done.returncode}):\n"
                         f"{done.stdout}{done.stderr}")


def _pip(spec, env_dir, args, what, environment=None):
    python = os.path.join(env_dir, "bin", "python3")
    base = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-input"]
    _run(spec, base + args, what, environment)


def _populate(spec, env_dir):
    installs = spec["locks"] or (spec["gpu"] and not spec["components"])
    venv = [spec["interpreter"]["executable"], "-m", "venv"] + ([] if installs else ["--without-pip"])
    _run(spec, venv + [env_dir], "creating the venv")
    if spec["locks"]:
        labels = ", ".join(lock["label"] for lock in spec["locks"])
        _say(spec, f"installing {labels} (pinned, hash-checked)")
        requirements = [arg for lock in spec["locks"] for arg in ("-r", lock["path"])]
        _pip(spec, env_dir, ["--require-hashes", "--no-deps", "--only-binary=:all:"] + requirements,
             f"pip install of {labels}")
    if spec["gpu"] and not spec["components"]:
        _say(spec, f"installing the GPU group {spec['gpu']['label']}")
        # Otherwise tensorrt-cu12's setup.py runs a pip of its own, which
        # installs the libraries' dependencies at whatever version is newest.
        _pip(spec, env_dir, ["--no-deps", "-r", spec["gpu"]["path"]],
             f"pip install of the GPU group {spec['gpu']['label']} (TensorRT needs NVIDIA's index)",
             {"NVIDIA_TENSORRT_DISABLE_INTERNAL_PIP": "1"})
    if spec["components"]:
        lines = [f"import site; site.addsitedir({site_packages(component_dir(c), c)!r})\n"
                 for c in _bootstrap_pinners_first(spec["components"])]
        with open(os.path.join(site_packages(env_dir, spec), COMPONENTS_PTH), "w") as handle:
            handle.writelines(lines)


def _pins_a_bootstrap_package(spec):
    pattern = re.compile(r"^(pip|setuptools)==", re.IGNORECASE | re.MULTILINE)
    for lock in spec["locks"]:
        with open(lock["path"]) as handle:
            if pattern.search(handle.read()):
                return True
    return False


def _bootstrap_pinners_first(components):
    """Components whose locks pin pip or setuptools first, else in order.

    Every venv carries the interpreter's own pip and setuptools; where a
    lock pins another version (torch's setuptools), that component must come
    first on the united path, or the unpinned copy of another would shadow it.
    """
    return sorted(components, key=lambda c: not _pins_a_bootstrap_package(c))


def component_dir(spec):
    """Where the environment of `spec` lives in its store."""
    return os.path.join(spec["store"], spec["digest"])


def ensure(spec):
    """Make the environment of `spec` (and its components) unless complete; returns its folder."""
    for component in spec["components"]:
        ensure(component)
    env_dir = component_dir(spec)
    if os.path.isfile(os.path.join(env_dir, COMPLETE)):
        return env_dir
    store = _writable_store(spec)
    with open(os.path.join(store, ".locks", spec["digest"] + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.isfile(os.path.join(env_dir, COMPLETE)):
            return env_dir  # another process made it while this one waited
        if os.path.lexists(env_dir):
            _say(spec, f"removing the unfinished environment {env_dir} (an interrupted creation)")
            shutil.rmtree(env_dir)
        _say(spec, f"creating environment {spec['digest'][:12]} in {store}")
        try:
            _populate(spec, env_dir)
        except BaseException:
            shutil.rmtree(env_dir, ignore_errors=True)
            raise
        with open(os.path.join(env_dir, COMPLETE), "w") as marker:
            json.dump({"name": spec["name"], "locks": [lock["label"] for lock in spec["locks"]],
                       "components": [c["name"] for c in spec["components"]]}, marker, indent=1)
    return env_dir


def main(argv):
    """`spec REQUEST SPEC` or `ensure SPEC`; exit 1 with one message on failure."""
    try:
        if len(argv) == 3 and argv[0] == "spec":
            with open(argv[1]) as handle:
                spec = make_spec(json.load(handle))
            with open(argv[2], "w") as handle:
                json.dump(spec, handle, indent=1, sort_keys=True)
            return 0
        if len(argv) == 2 and argv[0] == "ensure":
            with open(argv[1]) as handle:
                ensure(json.load(handle))
            return 0
    except StoreError as err:
        sys.stderr.write(f"python_env: {err}\n")
        return 1
    sys.stderr.write("usage: env_store.py spec REQUEST SPEC | ensure SPEC\n")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
