"""Tests of the implicit-state model generators (see tests/BUILD.bazel)."""
