"""Public entry point of the hermetic Python toolchain (see private/)."""

load("//third_party/python/private:python_env_private.bzl", _python_env = "python_env")

python_env = _python_env
