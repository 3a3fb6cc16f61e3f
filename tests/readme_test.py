"""Checks the front page (README.md) and the pages under docs/.

- README.md stays a front page: at most 12 KB; the rest lives in docs/,
  and every docs page is linked from the front page.
- Every relative link in README.md and docs/*.md names a file that exists,
  and its `#anchor`, if any, names a heading of that page (GitHub's slugs).
- The `bazel` / `./bazelw` commands on the front page name absolute labels.
  Whether those targets exist takes `bazel query`, which a test cannot run
  in its sandbox: `python3 tests/readme_test.py --front-page-targets` prints
  them, and .ci/run hands them to `bazel query`.

The pages come from the test's runfiles (//:README.md, //docs:pages).
"""

import os
import pathlib
import re
import shlex
import sys
import unittest

README_LIMIT_BYTES = 12 * 1024

_FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
_INLINE_CODE = re.compile(r"`[^`]+`")
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.MULTILINE)
_BAZEL = ("bazel", "./bazelw")


def runfiles_root() -> pathlib.Path:
    """The workspace folder of the test's runfiles."""
    return pathlib.Path(os.environ.get("TEST_SRCDIR", ".")) / os.environ.get("TEST_WORKSPACE", "")


def _blank(match: re.Match) -> str:
    return re.sub(r"[^\n]", " ", match.group(0))


def blank_fences(text: str) -> str:
    """Text with fenced code blocks blanked, line breaks kept."""
    return _FENCE.sub(_blank, text)


def blank_code(text: str) -> str:
    """Text with fenced blocks and inline code spans blanked, line breaks kept."""
    return _INLINE_CODE.sub(lambda m: "`" + _blank(m)[1:-1] + "`", blank_fences(text))


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every heading anchor of a page, numbered as GitHub numbers repeats."""
    found, seen = set(), {}
    for heading in _HEADING.findall(blank_fences(text)):
        slug = github_slug(heading)
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def relative_links(text: str) -> list[str]:
    """Link targets outside code that are neither absolute URLs nor mail addresses."""
    return [
        target for target in _LINK.findall(blank_code(text))
        if not re.match(r"^[a-z][a-z0-9+.-]*:", target)
    ]


def link_problems(page: pathlib.Path, root: pathlib.Path) -> list[str]:
    """What is wrong with a page's relative links: missing files, unknown anchors."""
    problems = []
    name = page.relative_to(root)
    for target in relative_links(page.read_text(encoding="utf-8")):
        path, _, anchor = target.partition("#")
        # normpath, not resolve: runfiles are symlinks into the source tree.
        relative = os.path.relpath(os.path.normpath(page.parent / path) if path else page, root)
        if relative.startswith(".."):
            problems.append(f"{name}: link {target!r} leaves the repository")
            continue
        local = root / relative
        if not local.exists():
            problems.append(f"{name}: link {target!r} names {path!r}, which does not exist")
        elif anchor and anchor not in anchors(local.read_text(encoding="utf-8")):
            problems.append(f"{name}: link {target!r}: {local.relative_to(root)} has no heading "
                            f"with anchor #{anchor}")
    return problems


def bazel_commands(text: str) -> list[list[str]]:
    """The `bazel` / `./bazelw` commands of a page: fenced shell lines and inline code spans."""
    lines = []
    for info, block in _FENCE.findall(text):
        if info.strip() in ("", "sh", "bash", "shell"):
            lines += block.replace("\\\n", " ").splitlines()
    lines += [span.strip("`").replace("\n", " ") for span in _INLINE_CODE.findall(_FENCE.sub("", text))]
    commands = []
    for line in lines:
        line = line.split(" #", 1)[0].strip()
        if line.split(" ", 1)[0] in _BAZEL:
            commands.append(shlex.split(line))
    return commands


def command_targets(words: list[str]) -> list[str]:
    """The targets and patterns of one command: words after the subcommand, before `--`.

    Options (`--config=...`) are skipped; so are placeholders such as `<family>`.
    """
    targets = []
    for word in words[2:]:
        if word == "--":
            break
        if not word.startswith("-") and "<" not in word:
            targets.append(word)
    return targets


def front_page_targets(text: str) -> list[str]:
    """Every target and pattern the page's Bazel commands name, sorted, once each."""
    return sorted({target for words in bazel_commands(text) for target in command_targets(words)})


class ReadmeTest(unittest.TestCase):
    """The front page and the docs pages: size, links, anchors and Bazel targets."""

    def setUp(self):
        self.root = runfiles_root()
        self.readme = self.root / "README.md"
        self.pages = sorted((self.root / "docs").glob("*.md"))
        self.assertTrue(self.readme.is_file(), "README.md is not in the test's runfiles")
        self.assertGreaterEqual(len(self.pages), 6, "docs/*.md missing from the runfiles (//docs:pages)")

    def test_readme_is_a_front_page(self):
        size = self.readme.stat().st_size
        self.assertLessEqual(size, README_LIMIT_BYTES,
                             f"README.md is {size} bytes, over the {README_LIMIT_BYTES}-byte front-page "
                             "limit; move the detail into a docs/ page and link it")

    def test_every_docs_page_is_linked_from_the_front_page(self):
        links = relative_links(self.readme.read_text(encoding="utf-8"))
        linked = {target.partition("#")[0] for target in links}
        missing = [f"docs/{page.name}" for page in self.pages if f"docs/{page.name}" not in linked]
        self.assertEqual(missing, [], "docs pages the front page does not link")

    def test_relative_links_and_anchors_resolve(self):
        problems = []
        for page in [self.readme, *self.pages]:
            problems += link_problems(page, self.root)
        self.assertEqual(problems, [])

    def test_front_page_commands_name_absolute_labels(self):
        text = self.readme.read_text(encoding="utf-8")
        self.assertGreaterEqual(len(bazel_commands(text)), 3, "too few bazel commands on the front page")
        targets = front_page_targets(text)
        self.assertIn("//models:implicit_repo", targets)
        relative = [target for target in targets if not target.startswith(("//", "@"))]
        self.assertEqual(relative, [], "front-page commands must name absolute labels (//pkg:name)")


class HelpersTest(unittest.TestCase):
    """The parsing the checks rely on, on hand-written text."""

    def test_slug_matches_github(self):
        self.assertEqual(github_slug("Several states (`state_pairs`)"), "several-states-state_pairs")
        self.assertEqual(github_slug("Triton's own CPU backends (`--config=real_backends`)"),
                         "tritons-own-cpu-backends---configreal_backends")

    def test_repeated_headings_are_numbered(self):
        self.assertEqual(anchors("# A\n## A\n```\n# not a heading\n```\n"), {"a", "a-1"})

    def test_links_in_code_are_not_links(self):
        text = "[x](a.md) `[y](b.md)`\n```\n[z](c.md)\n```\n[w](https://e.org)\n[u\nv](e.md#f)"
        self.assertEqual(relative_links(text), ["a.md", "e.md#f"])

    def test_commands_and_their_targets(self):
        text = ("```sh\n./bazelw test //a:b --config=x \\\n  //c:d   # note\n"
                "./bazelw run //t:v -- --repo //not:a_target\npip install x\n```\n"
                "prose `bazel build //e:f` and `//g:h` alone\n")
        targets = [command_targets(words) for words in bazel_commands(text)]
        self.assertEqual(targets, [["//a:b", "//c:d"], ["//t:v"], ["//e:f"]])


if __name__ == "__main__":
    if sys.argv[1:] == ["--front-page-targets"]:
        # For .ci/run: `bazel query "set($(python3 tests/readme_test.py --front-page-targets))"`.
        print(" ".join(front_page_targets((pathlib.Path(__file__).parent.parent / "README.md").read_text())))
    else:
        unittest.main()
