"""Public rule and macro for the repository of models Triton must refuse (see private/)."""

load(
    "//models/private:invalid_model_rules.bzl",
    _invalid_models = "invalid_models",
    _invalid_repository = "invalid_repository",
)

invalid_models = _invalid_models
invalid_repository = _invalid_repository
