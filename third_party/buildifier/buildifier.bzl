"""buildifier for this workspace: the pinned binary and the files it checks.

`buildifier_repository` installs npm's `@bazel/buildifier` (which ships
buildifier's binaries inside its tarball) with `npm ci` from the lock in
this folder, and exposes this host's binary. `starlark_files` lists every
BUILD, .bzl and WORKSPACE file of the workspace as labels. //tests:lint_test
takes both as data and runs `buildifier --mode=check --lint=warn` over the
files, so a file that buildifier would reformat, or a lint warning that is
not suppressed where it stands, fails the test.
"""

load(
    "//third_party/buildifier/private:buildifier_repository_private.bzl",
    _buildifier_repository = "buildifier_repository",
)
load(
    "//third_party/buildifier/private:starlark_files_private.bzl",
    _starlark_files = "starlark_files",
)

buildifier_repository = _buildifier_repository
starlark_files = _starlark_files
