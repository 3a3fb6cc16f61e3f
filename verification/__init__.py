"""Verifying a Triton server against the generated models: the second half of the product.

`verify` (//verification:verify) runs the checks (`checks`, `catalogue_checks`)
on a real tritonserver and reports, per family, what the contract says and,
per entry of the known-bug catalogue (`catalogue.json`), whether the server
under test still has the bug. `triton_sim` simulates Triton's sequence
batcher and implicit state for the model-contract tests, released Triton's
behaviour by default and each catalogued fix on request.
"""
