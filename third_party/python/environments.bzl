"""The project's hermetic Python environments: one per backend, one per test kind.

Each environment is a virtual environment made from one or more hashed locks
(`python_env` repository rule) and a Python toolchain that only targets
asking for it get: a target joins an environment with
`exec_compatible_with = in_python_env("<name>")`, which makes Bazel pick the
execution platform carrying that environment's constraint and, on it, that
environment's toolchain. `core` is the default (no constraint): the shared
library, the repository assembly and the unit tests need nothing more.

A repository holds only a launcher (third_party/python/private): the
environment itself is made in the machine's store the first time an action
or test runs in it, so a build served by a remote cache creates none, a
build of ONNX models never downloads TensorFlow, and every clone and output
base on the machine shares one copy. Since each launcher carries only its
own locks' digests, a pin change re-keys only the actions of that
environment. An environment with `components` unites theirs (their locks
are its locks) without installing a second copy.

A backend's environment comes from its entry in
generators/backends/backends.bzl and the requirement set in its folder.
"""

load("//generators/backends:backends.bzl", "BACKENDS", "backend_lock")
load("//third_party/python/private:python_env_private.bzl", _python_env = "python_env")

_CORE = "//third_party/python/core:requirements_lock.txt"

_PLAN_GPU = "//generators/backends/plan:requirements_gpu.in"

# name -> locks it installs (in one pip run: they must co-resolve) and the
# requirements installed only under --config=gpu.
# Every backend has its own (BACKENDS); only plans add a GPU group.
_GPU_REQUIREMENTS = {"plan": _PLAN_GPU}

PYTHON_ENVIRONMENTS = dict([
    (b, {"locks": [backend_lock(b)], "gpu_requirements": _GPU_REQUIREMENTS.get(b)})
    for b in BACKENDS
] + [
    # The standalone CLI and the Python API build any backend in-process:
    # every backend's environment, united without a copy (`components`).
    ("cli", {
        "components": BACKENDS,
        "gpu_requirements": _PLAN_GPU,
        "locks": [backend_lock(b) for b in BACKENDS],
    }),
    # The real-server tests (nvidia-pytriton's tritonserver, Triton's clients).
    ("e2e", {"locks": ["//third_party/python/e2e:requirements_lock.txt"]}),
    ("lint", {"locks": ["//third_party/python/lint:requirements_lock.txt"]}),
    # Last: the toolchain of every target that asks for no environment.
    ("core", {"locks": [_CORE]}),
])

DEFAULT_PYTHON_ENV = "core"

def in_python_env(name):
    """`exec_compatible_with` value that runs a target in environment `name`.

    Args:
      name: a key of PYTHON_ENVIRONMENTS.

    Returns:
      A list of constraint labels (empty for the default environment).
    """
    if name not in PYTHON_ENVIRONMENTS:
        fail("in_python_env: unknown environment '{}'; valid: {}".format(
            name,
            sorted(PYTHON_ENVIRONMENTS.keys()),
        ))
    if name == DEFAULT_PYTHON_ENV:
        return []
    return ["//platforms:python_" + name]

# buildifier: disable=unnamed-macro (in_python_env() names the targets it declares, one set per
# environment; a caller-chosen name would break those labels)
def python_environment_platforms():
    """Declares, in //platforms, one constraint and execution platform per environment."""
    native.constraint_setting(name = "python_env")
    for name in PYTHON_ENVIRONMENTS:
        if name == DEFAULT_PYTHON_ENV:
            continue
        native.constraint_value(name = "python_" + name, constraint_setting = ":python_env")
        native.platform(
            name = "python_{}_exec".format(name),
            constraint_values = [":python_" + name],
            parents = ["@local_config_platform//:host"],
        )

# buildifier: disable=unnamed-macro (python_environments() registers its toolchains by their
# fixed names, one per environment)
def python_environment_toolchains():
    """Declares, in //third_party/python, one toolchain per environment.

    The toolchain() targets live here, not in the environments' repositories,
    so resolution reads them without creating any environment.
    """
    for name in PYTHON_ENVIRONMENTS:
        native.toolchain(
            name = "python_{}_toolchain".format(name),
            toolchain = "@python_{}//:runtime_pair".format(name),
            toolchain_type = "@bazel_tools//tools/python:toolchain_type",
            exec_compatible_with = in_python_env(name),
        )

# buildifier: disable=unnamed-macro (WORKSPACE macro; BUILD files name its repositories
# @python_<environment> directly, so their names are fixed)
def python_environments():
    """WORKSPACE macro: the environments' repositories, platforms and toolchains."""
    for name, spec in PYTHON_ENVIRONMENTS.items():
        components = [
            {
                "gpu": PYTHON_ENVIRONMENTS[c].get("gpu_requirements"),
                "locks": PYTHON_ENVIRONMENTS[c]["locks"],
                "name": "python_" + c,
            }
            for c in spec.get("components", [])
        ]
        _python_env(
            name = "python_" + name,
            locks = [] if components else spec["locks"],
            components = json.encode(components) if components else "",
            gpu_requirements = None if components else spec.get("gpu_requirements"),
        )

    # The host first: targets asking for no environment run there, on `core`.
    native.register_execution_platforms(
        "@local_config_platform//:host",
        *["//platforms:python_{}_exec".format(n) for n in PYTHON_ENVIRONMENTS if n != DEFAULT_PYTHON_ENV]
    )
    native.register_toolchains(
        *["//third_party/python:python_{}_toolchain".format(n) for n in PYTHON_ENVIRONMENTS]
    )
