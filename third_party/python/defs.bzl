"""py_binary, py_library and py_test for this project's BUILD files and macros.

They are Bazel's native Python rules (see private/py_rules_private.bzl for
why they are loaded from here rather than from rules_python).
"""

load(
    "//third_party/python/private:py_rules_private.bzl",
    _py_binary = "py_binary",
    _py_library = "py_library",
    _py_test = "py_test",
)

py_binary = _py_binary
py_library = _py_library
py_test = _py_test
