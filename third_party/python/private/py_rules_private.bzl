"""Implementation of //third_party/python:defs.bzl: Bazel's native Python rules.

buildifier's `native-py` check asks for py_binary, py_library and py_test to
be loaded from rules_python. No rules_python can be had where this project
builds (nothing is downloaded from GitHub; docs/build.md), and Bazel 4.2.3
has the rules built in, so BUILD files load them from //third_party/python
and these wrappers are the only calls of the native rules: the one place
that suppresses `native-py`, each with its reason, and the one file to
change when rules_python can be had.
"""

def py_binary(**attrs):
    """Bazel's native py_binary.

    Args:
      **attrs: its attributes, as Bazel documents them.
    """

    # buildifier: disable=native-py (no rules_python obtainable offline)
    native.py_binary(**attrs)

def py_library(**attrs):
    """Bazel's native py_library.

    Args:
      **attrs: its attributes, as Bazel documents them.
    """

    # buildifier: disable=native-py (no rules_python obtainable offline)
    native.py_library(**attrs)

def py_test(**attrs):
    """Bazel's native py_test.

    Args:
      **attrs: its attributes, as Bazel documents them.
    """

    # buildifier: disable=native-py (no rules_python obtainable offline)
    native.py_test(**attrs)
