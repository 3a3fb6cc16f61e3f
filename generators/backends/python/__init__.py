"""The python backend: its builder, generator binary and hermetic requirement set."""
