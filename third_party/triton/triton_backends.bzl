"""Triton's own CPU backends (onnxruntime, tensorflow, pytorch) as an external repository.

`triton_backends` links the backend folders found beside the checkout
(`../shared/triton/backends`, or the folder `TRITON_REAL_BACKENDS_DIR`
names) into `@triton_backends`, whose `:backends` filegroup the real-server
e2e takes as data under `--config=real_backends`. Without such a folder the
repository is an empty stand-in whose `:absent` file says why, so
`bazel test //...` works for anyone.
"""

load("//third_party/triton/private:triton_backends_private.bzl", _triton_backends = "triton_backends")

triton_backends = _triton_backends
