"""The libtorch (TorchScript) backend: its builder, generator binary and hermetic requirement set."""
