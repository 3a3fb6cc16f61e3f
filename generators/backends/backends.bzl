"""The backend families, for Starlark: each is one folder under generators/backends/.

A backend's folder holds its builder (`<backend>_builder`), its generator
binary (`<backend>_generator`), its requirement set (requirements.in and the
hashed requirements_lock.txt) and a `python_sources` filegroup. Its Python
environment, generator label and model targets all derive from this list;
generators/backends/__init__.py registers the builder for Python and
configs/matrix.json says which repositories hold its models.
"""

BACKENDS = ["onnx", "savedmodel", "python", "plan"]

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
