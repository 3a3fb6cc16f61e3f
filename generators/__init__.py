"""Generators of Triton implicit-state model repositories (see README.md)."""
