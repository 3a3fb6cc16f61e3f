"""Repository rule that turns configs/matrix.json into a Starlark `VARIANTS` list.

BUILD files cannot read JSON, and the expansion logic (cross products, the
per-backend dtype table) must exist once: so this rule runs
generators/matrix.py, the same code the standalone CLI uses, and writes its
output as `@<name>//:variants.bzl`; likewise generators/invalid_models.py
turns configs/invalid_models.json (the models Triton must refuse) into
`@<name>//:invalid_models.bzl`. Every file the expansions read is a label
attribute, so editing the data or the expansion code re-runs the rule.
"""

def _expand(rctx, python, root, module, flag, data):
    result = rctx.execute(
        [python, "-S", "-s", "-m", module, flag, str(rctx.path(data))],
        environment = {"PYTHONPATH": str(root)},
        quiet = True,
    )
    if result.return_code != 0:
        fail("variant_matrix: expanding {} failed:\n{}".format(data, result.stderr))
    return result.stdout

def _variant_matrix_impl(rctx):
    for src in rctx.attr.srcs:
        rctx.path(src)  # record as an input: an edit re-runs the rule
    root = rctx.path(rctx.attr.matrix).dirname.dirname
    python = rctx.os.environ.get("IMPLICIT_PYTHON") or rctx.which("python3")
    if not python:
        fail("variant_matrix: no python3 on PATH; install Python 3.11 or set IMPLICIT_PYTHON")
    rctx.file("variants.bzl", _expand(rctx, python, root, "generators.matrix", "--matrix", rctx.attr.matrix))
    rctx.file("invalid_models.bzl", _expand(
        rctx,
        python,
        root,
        "generators.invalid_models",
        "--invalid-models",
        rctx.attr.invalid_models,
    ))
    rctx.file("BUILD.bazel", "exports_files([\"invalid_models.bzl\", \"variants.bzl\"])\n")
    rctx.file("WORKSPACE", "workspace(name = \"{}\")\n".format(rctx.name))

variant_matrix = repository_rule(
    implementation = _variant_matrix_impl,
    attrs = {
        "invalid_models": attr.label(mandatory = True, allow_single_file = [".json"]),
        "matrix": attr.label(mandatory = True, allow_single_file = [".json"]),
        "srcs": attr.label_list(allow_files = [".py"], doc = "the Python files the expansion imports"),
    },
    environ = ["IMPLICIT_PYTHON"],
    doc = "Expands the variant matrix into @<name>//:variants.bzl (VARIANTS) and the" +
          " invalid models into @<name>//:invalid_models.bzl (INVALID_BASES).",
)
