"""toolchain_test's package check with and without the GPU group, on a machine without a GPU.

toolchain_plan_test and toolchain_cli_test compare an environment's
distributions with its locks, plus generators/backends/plan/requirements_gpu.in
when the launcher says the rule installed it (IMPLICIT_GPU=1, which
`--config=gpu` sets). Neither runs that way here, so this test feeds the same
functions what the plan environment holds on a GPU machine:

- the lock and the GPU group, the launcher naming the group: no problem;
- the same and one package neither pins: that package, and only it;
- the group's packages while the launcher says "none": each one;
- a launcher naming another digest, or a group the environment lacks: an error.

It also checks the group file: exact pins only, naming every package a
TensorRT install pulls in (the rule installs it with --no-deps, so a missing
one would be missing from the environment), and none at a version other
than a lock installed beside it pins (the cli environment installs every
backend's lock, libtorch's CUDA runtime included).
"""

import hashlib
import os
import re
import unittest

from tests import toolchain_test as toolchain

GPU_REQUIREMENTS = toolchain._runfile(os.environ["GPU_REQUIREMENTS"])
LOCKS = [toolchain._runfile(lock) for lock in os.environ["GPU_GROUP_LOCKS"].split()]
PLAN_LOCK = next(lock for lock in LOCKS if lock.parent.name == "plan")
# What `pip install tensorrt==10.5.0` installs: two source archives that only
# provide the import name, the bindings, the libraries, and the CUDA runtime
# the libraries' metadata requires.
TENSORRT_PACKAGES = {"tensorrt", "tensorrt-cu12", "tensorrt-cu12-bindings",
                     "tensorrt-cu12-libs", "nvidia-cuda-runtime-cu12"}


def _launcher(gpu: str) -> str:
    """A launcher's text as the repository rule writes it, with this GPU group line."""
    return f"#!/bin/sh\n# lock //x:requirements_lock.txt sha256: {'0' * 64}\n# gpu requirements: {gpu}\n"


def _installed_group_line() -> str:
    digest = hashlib.sha256(GPU_REQUIREMENTS.read_bytes()).hexdigest()
    return f"requirements_gpu.in sha256 {digest}"


def _plan_environment(launcher: str) -> dict:
    """The pins toolchain_plan_test accepts for this launcher."""
    group = toolchain.installed_gpu_group(launcher, GPU_REQUIREMENTS)
    return toolchain.read_pins([PLAN_LOCK] + group)


class GpuGroupCheckTest(unittest.TestCase):
    """The check toolchain_<env>_test runs, on a simulated --config=gpu environment."""

    def test_gpu_group_packages_are_accepted_when_installed(self):
        pins = _plan_environment(_launcher(_installed_group_line()))
        installed = toolchain.read_pins([PLAN_LOCK, GPU_REQUIREMENTS])
        self.assertLessEqual(TENSORRT_PACKAGES, set(installed))
        self.assertEqual(toolchain.unpinned_or_mismatched(installed, pins), [])

    def test_a_package_outside_the_locks_still_fails(self):
        pins = _plan_environment(_launcher(_installed_group_line()))
        installed = dict(toolchain.read_pins([PLAN_LOCK, GPU_REQUIREMENTS]), torch="2.5.1")
        self.assertEqual(toolchain.unpinned_or_mismatched(installed, pins),
                         ["torch 2.5.1 is installed but no lock pins it"])

    def test_another_version_than_the_group_pins_fails(self):
        pins = _plan_environment(_launcher(_installed_group_line()))
        installed = dict(toolchain.read_pins([PLAN_LOCK, GPU_REQUIREMENTS]), tensorrt="10.6.0")
        self.assertEqual(toolchain.unpinned_or_mismatched(installed, pins),
                         ["tensorrt is 10.6.0, not the pinned 10.5.0"])

    def test_without_the_group_its_packages_are_extras(self):
        pins = _plan_environment(_launcher("none"))
        installed = toolchain.read_pins([PLAN_LOCK, GPU_REQUIREMENTS])
        problems = toolchain.unpinned_or_mismatched(installed, pins)
        self.assertEqual({line.split(" ")[0] for line in problems}, TENSORRT_PACKAGES)

    def test_launcher_must_name_this_file_and_digest(self):
        with self.assertRaisesRegex(AssertionError, "is not requirements_gpu.in at sha256"):
            _plan_environment(_launcher("requirements_gpu.in sha256 " + "0" * 64))
        with self.assertRaisesRegex(AssertionError, "this environment has none of"):
            toolchain.installed_gpu_group(_launcher(_installed_group_line()), None)


class GpuGroupFileTest(unittest.TestCase):
    """requirements_gpu.in: complete, exact, and in step with the locks beside it."""

    def test_every_requirement_is_an_exact_pin(self):
        lines = [line.strip() for line in GPU_REQUIREMENTS.read_text().splitlines()]
        requirements = [line for line in lines if line and not line.startswith(("#", "--"))]
        for line in requirements:
            self.assertRegex(line, r"^[A-Za-z0-9_.\-]+==[0-9][^\s]*$")
        self.assertEqual(len(requirements), len(toolchain.read_pins([GPU_REQUIREMENTS])))

    def test_lists_every_package_a_tensorrt_install_adds(self):
        self.assertEqual(set(toolchain.read_pins([GPU_REQUIREMENTS])), TENSORRT_PACKAGES)

    def test_agrees_with_the_locks_installed_beside_it(self):
        group = toolchain.read_pins([GPU_REQUIREMENTS])
        for lock in LOCKS:
            for name, version in toolchain.read_pins([lock]).items():
                if name in group:
                    self.assertEqual(group[name], version, f"{name}: {lock} and the GPU group differ")

    def test_tensorrt_packages_share_one_release(self):
        group = toolchain.read_pins([GPU_REQUIREMENTS])
        releases = {group[name] for name in group if re.match(r"^tensorrt(-|$)", name)}
        self.assertEqual(len(releases), 1, releases)


if __name__ == "__main__":
    unittest.main()
