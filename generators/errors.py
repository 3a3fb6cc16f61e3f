"""Errors raised by the implicit-state model generators.

Every error names the offending field or value, the rule it breaks and the
way out, so that a QA engineer reading a failed build log knows what to edit.
"""


class GeneratorError(Exception):
    """Base class of every error the generators raise on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)


class SpecError(GeneratorError):
    """A variant spec is malformed: missing, unknown or mistyped keys."""

    def __init__(self, message: str) -> None:
        super().__init__(f"invalid variant spec: {message}")


class UnsupportedVariantError(GeneratorError):
    """A well-formed variant asks for a combination the contract excludes."""

    def __init__(self, message: str) -> None:
        super().__init__(f"unsupported variant: {message}")


class OptionError(GeneratorError):
    """A generator-wide option (an ONNX version) is out of range."""

    def __init__(self, message: str) -> None:
        super().__init__(f"invalid option: {message}")


class OutputDirError(GeneratorError):
    """The output directory is missing, not a directory or not writable."""

    def __init__(self, message: str) -> None:
        super().__init__(f"output directory: {message}")


class BackendUnavailableError(GeneratorError):
    """A backend's build-time dependency (TensorRT, a GPU) is not present."""

    def __init__(self, message: str) -> None:
        super().__init__(f"backend unavailable: {message}")


class ModelBuildError(GeneratorError):
    """A model's build failed with an error of its own (a full disk, onnx's checker, a bug).

    The standalone CLI raises it naming the model, so that one line says
    which model failed and why; the repository is left as it was.
    """

    def __init__(self, message: str) -> None:
        super().__init__(f"model build failed: {message}")
