"""Bazel tool that builds one libtorch implicit-state model (see generate_model)."""

import sys

from generators.generate_model import main
from generators.variant import Backend

if __name__ == "__main__":
    sys.exit(main(Backend.LIBTORCH))
