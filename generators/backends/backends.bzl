"""The backend families, for Starlark: each is one folder under generators/backends/.

A backend's folder holds its builder (`<backend>_builder`), its generator
binary (`<backend>_generator`), its requirement set (requirements.in and the
hashed requirements_lock.txt) and a `python_sources` filegroup. Its Python
environment, generator label and model targets all derive from this list;
generators/backends/__init__.py registers the builder for Python and
configs/matrix.json says which repositories hold its models.
"""

load("//third_party/python:defs.bzl", "py_binary", "py_library")

BACKENDS = ["onnx", "savedmodel", "python", "plan", "libtorch"]

def backend_package(backend):
    """The package of a backend: `//generators/backends/<backend>`."""
    if backend not in BACKENDS:
        fail("unknown backend '{}'; valid backends are {}".format(backend, BACKENDS))
    return "//generators/backends/" + backend

def backend_generator(backend):
    """Label of a backend's generator binary."""
    return "{}:{}_generator".format(backend_package(backend), backend)

def backend_lock(backend):
    """Label of a backend's hashed lock."""
    return backend_package(backend) + ":requirements_lock.txt"

def backend_targets(name, srcs = [], data = [], exports = []):
    """The targets of one backend's package (call from its BUILD file).

    `<backend>_builder` (py_library: the builder, on the shared core),
    `<backend>_generator` (py_binary, run in the backend's own Python
    environment), `python_sources` (for lint) and the exported requirement
    set.

    Args:
      name: the backend, a member of BACKENDS (it names the targets).
      srcs: further modules of the builder library (helpers it imports).
      data: files the builder reads at run time (e.g. a model source).
      exports: further files to export (e.g. a GPU-only requirement set).
    """
    backend_package(name)  # fails early on an unknown backend
    native.exports_files(["requirements.in", "requirements_lock.txt"] + exports)
    native.filegroup(
        name = "python_sources",
        srcs = native.glob(["*.py"]),
    )
    py_library(
        name = name + "_builder",
        srcs = ["__init__.py", name + "_builder.py"] + srcs,
        data = data,
        deps = ["//generators:implicit_common"],
    )
    py_binary(
        name = name + "_generator",
        srcs = [name + "_generator.py"],
        exec_compatible_with = ["//platforms:python_" + name],
        python_version = "PY3",
        deps = [":{}_builder".format(name)],
    )
