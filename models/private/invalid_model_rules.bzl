"""The repository of models Triton must refuse (configs/invalid_models.json).

`invalid_repository` runs generators/invalid_repo.py once over the base
models (`implicit_model` targets) the invalid models are made from, writing
`<repository>/<family>_<defect>` folders and a manifest.json. The macro
`invalid_models` takes `INVALID_BASES` from `@implicit_variants` and, like
`implicit_models`, adds GPU-only bases (plans) only when building for
//platforms:gpu. The repository is kept apart from //models:implicit_repo,
whose every model must load.
"""

load(":implicit_model_rules.bzl", "ImplicitModelInfo")

def _invalid_repository_impl(ctx):
    out = ctx.actions.declare_directory(ctx.label.name)
    args = ctx.actions.args()
    args.add("--out", out.path)
    args.add("--invalid-models", ctx.file.invalid_models.path)
    inputs = [ctx.file.invalid_models]
    for base in ctx.attr.bases:
        info = base[ImplicitModelInfo]
        args.add_all("--base", ["{}/{}".format(info.repository, info.model_name), info.directory.path])
        inputs.append(info.directory)
    args.use_param_file("@%s", use_always = True)
    args.set_param_file_format("multiline")
    ctx.actions.run(
        executable = ctx.executable._tool,
        arguments = [args],
        inputs = inputs,
        outputs = [out],
        mnemonic = "InvalidModelRepo",
        progress_message = "Building the invalid-model repository {}".format(out.short_path),
    )
    return [DefaultInfo(files = depset([out]), runfiles = ctx.runfiles(files = [out]))]

invalid_repository = rule(
    implementation = _invalid_repository_impl,
    doc = "The invalid models made from `bases`, plus manifest.json.",
    attrs = {
        "bases": attr.label_list(providers = [ImplicitModelInfo]),
        "invalid_models": attr.label(mandatory = True, allow_single_file = [".json"]),
        "_tool": attr.label(
            default = "//generators:invalid_repo",
            executable = True,
            cfg = "exec",
        ),
    },
)

def invalid_models(name, bases, invalid_models, **kwargs):
    """`name`: the invalid-model repository built from `bases`.

    Args:
      name: the target's name.
      bases: INVALID_BASES from @implicit_variants//:invalid_models.bzl
        (dicts of `base`, `<repository>/<model>`, and `gpu_only`).
      invalid_models: the label of configs/invalid_models.json.
      **kwargs: passed to the rule (e.g. visibility).
    """
    cpu = [":" + b["base"] for b in bases if not b["gpu_only"]]
    gpu = [":" + b["base"] for b in bases if b["gpu_only"]]
    invalid_repository(
        name = name,
        bases = cpu + select({
            "//platforms:is_gpu": gpu,
            "//conditions:default": [],
        }),
        invalid_models = invalid_models,
        **kwargs
    )
