"""Repository rule that turns configs/matrix.json into a Starlark `VARIANTS` list.

BUILD files cannot read JSON, and the expansion logic (cross products, the
per-backend dtype table) must exist once: so this rule runs
generators/matrix.py, the same code the standalone CLI uses, and writes its
output as `@<name>//:variants.bzl`. Every file the expansion reads is a label
attribute, so editing the matrix or the expansion code re-runs the rule.
"""

def _variant_matrix_impl(rctx):
    for src in rctx.attr.srcs:
        rctx.path(src)  # record as an input: an edit re-runs the rule
    root = rctx.path(rctx.attr.matrix).dirname.dirname
    python = rctx.os.environ.get("IMPLICIT_PYTHON") or rctx.which("python3")
    if not python:
        fail("variant_matrix: no python3 on PATH; install Python 3.11 or set IMPLICIT_PYTHON")
    result = rctx.execute(
        [python, "-S", "-s", "-m", "generators.matrix", "--matrix", str(rctx.path(rctx.attr.matrix))],
        environment = {"PYTHONPATH": str(root)},
        quiet = True,
    )
    if result.return_code != 0:
        fail("variant_matrix: expanding {} failed:\n{}".format(rctx.attr.matrix, result.stderr))
    rctx.file("variants.bzl", result.stdout)
    rctx.file("BUILD.bazel", "exports_files([\"variants.bzl\"])\n")
    rctx.file("WORKSPACE", "workspace(name = \"{}\")\n".format(rctx.name))

variant_matrix = repository_rule(
    implementation = _variant_matrix_impl,
    attrs = {
        "matrix": attr.label(mandatory = True, allow_single_file = [".json"]),
        "srcs": attr.label_list(allow_files = [".py"], doc = "the Python files the expansion imports"),
    },
    environ = ["IMPLICIT_PYTHON"],
    doc = "Expands the variant matrix into @<name>//:variants.bzl (VARIANTS).",
)
