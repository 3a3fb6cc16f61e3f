"""Model runners for the contract tests: `<backend>_runner.load(model_dir)`."""
