"""Public rules and macro for implicit-state models (see private/)."""

load(
    "//models/private:implicit_model_rules.bzl",
    _ImplicitModelInfo = "ImplicitModelInfo",
    _implicit_model = "implicit_model",
    _implicit_models = "implicit_models",
    _implicit_repository = "implicit_repository",
)

ImplicitModelInfo = _ImplicitModelInfo
implicit_model = _implicit_model
implicit_models = _implicit_models
implicit_repository = _implicit_repository
