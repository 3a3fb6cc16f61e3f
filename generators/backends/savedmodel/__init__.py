"""The savedmodel backend: its builder, generator binary and hermetic requirement set."""
