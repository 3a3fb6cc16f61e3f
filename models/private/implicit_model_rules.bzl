"""Rules that turn variants into build actions and assemble the repositories.

`implicit_model` runs one backend generator (a py_binary, as a persistent
worker) to produce one model directory (a tree artifact).
`implicit_repository` merges model directories into the upstream-named
repository folders and writes manifest.json. `implicit_models` is the macro
that loops over the variant matrix. Each model action runs in its backend's
Python environment (`exec_compatible_with`), so it is keyed by that
environment's locks only.
"""

load("//generators/backends:backends.bzl", "BACKENDS", "backend_generator")
load("//third_party/python:environments.bzl", "in_python_env")

ImplicitModelInfo = provider(
    doc = "One generated model directory and where it belongs.",
    fields = {
        "repository": "repository directory name",
        "model_name": "model name (directory name inside the repository)",
        "spec": "variant spec, canonical JSON",
        "directory": "the model's tree artifact",
    },
)

# Backend -> generator binary, from the backend list (generators/backends).
GENERATORS = {backend: backend_generator(backend) for backend in BACKENDS}

# Both tools serve Bazel's JSON worker protocol (generators/worker.py).
_WORKER = {
    "requires-worker-protocol": "json",
    "supports-workers": "1",
}

_VARIANT_KEYS = ["backend", "gpu_only", "name", "repository", "spec"]

def _implicit_model_impl(ctx):
    out = ctx.actions.declare_directory(ctx.label.name)
    args = ctx.actions.args()
    args.add("--spec", ctx.attr.spec)
    args.add("--out", out.path)
    args.use_param_file("@%s", use_always = True)
    args.set_param_file_format("multiline")
    ctx.actions.run(
        executable = ctx.executable.generator,
        arguments = [args],
        outputs = [out],
        mnemonic = ctx.attr.mnemonic,
        progress_message = "Generating {} model {}/{}".format(
            ctx.attr.mnemonic,
            ctx.attr.repository,
            ctx.attr.model_name,
        ),
        execution_requirements = _WORKER,
    )
    return [
        DefaultInfo(files = depset([out]), runfiles = ctx.runfiles(files = [out])),
        ImplicitModelInfo(
            repository = ctx.attr.repository,
            model_name = ctx.attr.model_name,
            spec = ctx.attr.spec,
            directory = out,
        ),
    ]

implicit_model = rule(
    implementation = _implicit_model_impl,
    doc = "One implicit-state model directory built by a backend generator.",
    attrs = {
        "generator": attr.label(mandatory = True, executable = True, cfg = "exec"),
        "mnemonic": attr.string(mandatory = True),
        "model_name": attr.string(mandatory = True),
        "repository": attr.string(mandatory = True),
        "spec": attr.string(mandatory = True, doc = "variant spec JSON (generators/variant.py)"),
    },
)

def _implicit_repository_impl(ctx):
    out = ctx.actions.declare_directory(ctx.label.name)
    args = ctx.actions.args()
    args.add("--out", out.path)
    inputs = []
    for model in ctx.attr.models:
        info = model[ImplicitModelInfo]
        args.add_all("--model", [info.repository, info.directory.path, info.spec])
        inputs.append(info.directory)
    args.use_param_file("@%s", use_always = True)
    args.set_param_file_format("multiline")
    ctx.actions.run(
        executable = ctx.executable._assembler,
        arguments = [args],
        inputs = inputs,
        outputs = [out],
        mnemonic = "AssembleImplicitRepo",
        progress_message = "Assembling {} models into {}".format(len(inputs), out.short_path),
        execution_requirements = _WORKER,
    )
    return [DefaultInfo(files = depset([out]), runfiles = ctx.runfiles(files = [out]))]

implicit_repository = rule(
    implementation = _implicit_repository_impl,
    doc = "Upstream-named repository folders holding the models, plus manifest.json.",
    attrs = {
        "models": attr.label_list(providers = [ImplicitModelInfo]),
        "_assembler": attr.label(
            default = "//generators:assemble_repo",
            executable = True,
            cfg = "exec",
        ),
    },
)

def _check_variant(variant):
    missing = [key for key in _VARIANT_KEYS if key not in variant]
    if missing:
        fail("implicit_models: variant {} lacks keys {}; regenerate @implicit_variants".format(variant, missing))
    if variant["backend"] not in GENERATORS:
        fail("implicit_models: variant '{}' has backend '{}'; valid backends are {}".format(
            variant["name"],
            variant["backend"],
            sorted(GENERATORS.keys()),
        ))

def _assemble(name, cpu_models, gpu_models, **kwargs):
    implicit_repository(
        name = name,
        models = cpu_models + select({
            "//platforms:is_gpu": gpu_models,
            "//conditions:default": [],
        }),
        **kwargs
    )

def implicit_models(name, variants, **kwargs):
    """One `implicit_model` per variant; `name` and `<backend>_repo` assembling them.

    Targets are named `<repository>/<model name>`. `name` assembles every
    model; `<backend>_repo` (e.g. `onnx_repo`) only one family's, in the same
    repository folders with its own manifest, so building it creates only
    that family's Python environment. GPU-only variants are compatible only
    with //platforms:gpu and join a repository only when building for that
    platform (--config=gpu).

    Args:
      name: name of the target assembling every model.
      variants: list of dicts from @implicit_variants//:variants.bzl.
      **kwargs: passed to the assembled targets (e.g. visibility).
    """
    by_backend = {backend: ([], []) for backend in BACKENDS}
    for variant in variants:
        _check_variant(variant)
        target = "{}/{}".format(variant["repository"], variant["name"])
        backend = variant["backend"]
        implicit_model(
            name = target,
            generator = GENERATORS[backend],
            mnemonic = backend.capitalize() + "Model",
            model_name = variant["name"],
            repository = variant["repository"],
            spec = variant["spec"],
            exec_compatible_with = in_python_env(backend),
            target_compatible_with = ["//platforms:gpu"] if variant["gpu_only"] else [],
        )
        by_backend[backend][1 if variant["gpu_only"] else 0].append(":" + target)
    for backend, (cpu_models, gpu_models) in by_backend.items():
        _assemble(backend + "_repo", cpu_models, gpu_models, **kwargs)
    _assemble(
        name,
        [t for cpu, _ in by_backend.values() for t in cpu],
        [t for _, gpu in by_backend.values() for t in gpu],
        **kwargs
    )
