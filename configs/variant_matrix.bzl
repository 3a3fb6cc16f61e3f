"""Public entry point of the variant-matrix repository rule (see private/)."""

load("//configs/private:variant_matrix_private.bzl", _variant_matrix = "variant_matrix")

variant_matrix = _variant_matrix
