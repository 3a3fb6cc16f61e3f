"""third_party/python/private/env_store.py: the machine's store of Python environments.

Runs the store's two commands on small environments in a scratch store (no
lock needs a download: the ones installed are empty or refused before pip
reaches an index), as the repository rule and the launchers run them:

- the digest follows the locks' contents, the GPU group, the components and
  the interpreter, never a label or a path;
- two processes that need one environment at once create it once;
- a creation that was interrupted (a folder without its marker) is removed
  and made again, and an environment is never used before it is complete;
- a failed install names the environment, the lock and pip's own message,
  and leaves nothing behind;
- a composed environment reaches its components' packages without a copy;
- a store that cannot be written, or belongs to someone else, is refused
  with the way out.
"""

import json
import os
import pathlib
import subprocess
import sys
import tempfile
import unittest

RUNFILES = pathlib.Path(os.environ.get("TEST_SRCDIR", ".")) / os.environ.get("TEST_WORKSPACE", "")
TOOL = RUNFILES / "third_party/python/private/env_store.py"
BASE_PYTHON = getattr(sys, "_base_executable", sys.executable)


def _store_tool(*args, env=None):
    return subprocess.run([BASE_PYTHON, "-s", "-P", str(TOOL), *args], capture_output=True,
                          text=True, check=False, timeout=300, env=env)


class StoreCase(unittest.TestCase):
    """A scratch store and helpers to write requests and specs into it."""

    def setUp(self):
        self.work = pathlib.Path(tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR")))
        self.store = self.work / "store"

    def lock(self, name, text=""):
        path = self.work / name
        path.write_text(text)
        return {"label": f"//fake:{name}", "path": str(path)}

    def spec(self, request):
        request = {"store": str(self.store), **request}
        (self.work / "request.json").write_text(json.dumps(request))
        done = _store_tool("spec", str(self.work / "request.json"), str(self.work / "spec.json"))
        self.assertEqual(done.returncode, 0, done.stderr)
        return json.loads((self.work / "spec.json").read_text())

    def ensure(self, spec, name="spec.json", env=None):
        path = self.work / name
        path.write_text(json.dumps(spec))
        return _store_tool("ensure", str(path), env=env)


class DigestTest(StoreCase):
    """What keys an environment, and what does not."""

    def test_contents_key_it_labels_do_not(self):
        first = self.spec({"name": "a", "locks": [self.lock("one.txt", "x==1\n")]})
        renamed = self.spec({"name": "b", "locks": [self.lock("two.txt", "x==1\n")]})
        edited = self.spec({"name": "a", "locks": [self.lock("one.txt", "x==2\n")]})
        self.assertEqual(first["digest"], renamed["digest"])
        self.assertNotEqual(first["digest"], edited["digest"])

    def test_gpu_group_and_components_key_it(self):
        plain = self.spec({"name": "a", "locks": [self.lock("l.txt", "x==1\n")]})
        gpu = self.spec({"name": "a", "locks": [self.lock("l.txt", "x==1\n")],
                         "gpu": self.lock("gpu.in", "y==1\n")})
        composed = self.spec({"name": "c", "components": [{"name": "a", "store": str(self.store),
                                                           "locks": [self.lock("l.txt", "x==1\n")]}]})
        self.assertEqual(len({plain["digest"], gpu["digest"], composed["digest"]}), 3)
        self.assertEqual(composed["components"][0]["digest"], plain["digest"])

    def test_interpreter_keys_it(self):
        spec = self.spec({"name": "a"})
        self.assertEqual(spec["interpreter"]["version"], "%d.%d.%d" % sys.version_info[:3])
        (self.work / "probe.py").write_text(
            f"import sys; sys.path.insert(0, {str(TOOL.parent)!r}); import env_store;"
            " import json; r = json.load(open(sys.argv[1]));"
            " i = dict(env_store._describe(), cache_tag='other-tag');"
            " print(env_store.make_spec(r, i)['digest'])")
        done = subprocess.run([BASE_PYTHON, str(self.work / "probe.py"), str(self.work / "request.json")],
                              capture_output=True, text=True, check=True)
        self.assertNotEqual(done.stdout.strip(), spec["digest"])


class CreationTest(StoreCase):
    """Creation: once, whole, cleaned after an interruption, refused with a reason."""

    def test_two_processes_create_it_once(self):
        spec = self.spec({"name": "shared"})
        (self.work / "spec.json").write_text(json.dumps(spec))
        command = [BASE_PYTHON, "-s", "-P", str(TOOL), "ensure", str(self.work / "spec.json")]
        runs = [subprocess.Popen(command, stderr=subprocess.PIPE, text=True) for _ in range(3)]
        errors = [run.communicate(timeout=300)[1] for run in runs]
        self.assertEqual([run.returncode for run in runs], [0, 0, 0], errors)
        self.assertEqual(sum(text.count("creating environment") for text in errors), 1, errors)
        self.assertTrue((self.store / spec["digest"] / ".complete").is_file())

    def test_an_interrupted_creation_is_made_again(self):
        spec = self.spec({"name": "half"})
        unfinished = self.store / spec["digest"]
        (unfinished / "bin").mkdir(parents=True)
        (unfinished / "bin" / "leftover").write_text("from a killed creation")
        done = self.ensure(spec)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn("removing the unfinished environment", done.stderr)
        self.assertFalse((unfinished / "bin" / "leftover").exists())
        self.assertTrue((unfinished / ".complete").is_file())
        self.assertTrue((unfinished / "bin" / "python3").exists())

    def test_a_complete_environment_is_not_touched(self):
        spec = self.spec({"name": "done"})
        self.assertEqual(self.ensure(spec).returncode, 0)
        marker = self.store / spec["digest"] / ".complete"
        before = marker.stat().st_mtime_ns
        again = self.ensure(spec)
        self.assertEqual((again.returncode, again.stderr), (0, ""))
        self.assertEqual(marker.stat().st_mtime_ns, before)

    def test_a_failed_install_names_the_lock_and_leaves_nothing(self):
        lock = self.lock("broken_lock.txt", "no-such-package-here==1.0 --hash=sha256:" + "0" * 64 + "\n")
        spec = self.spec({"name": "python_broken", "locks": [lock]})
        done = self.ensure(spec, env=dict(os.environ, PIP_NO_INDEX="1"))
        self.assertEqual(done.returncode, 1)
        self.assertIn("python_env: python_broken: pip install of //fake:broken_lock.txt failed", done.stderr)
        self.assertIn("no-such-package-here", done.stderr)  # pip's own message
        self.assertFalse((self.store / spec["digest"]).exists())

    def test_a_composed_environment_reaches_its_components(self):
        component = {"name": "part", "store": str(self.store)}
        spec = self.spec({"name": "whole", "components": [component]})
        self.assertEqual(self.ensure(spec).returncode, 0)
        part_dir = self.store / spec["components"][0]["digest"]
        site = next(part_dir.glob("lib/python3*/site-packages"))
        (site / "only_in_part.py").write_text("WHERE = 'part'\n")
        python = self.store / spec["digest"] / "bin" / "python3"
        done = subprocess.run([str(python), "-s", "-c", "import only_in_part, sys; print(sys.prefix)"],
                              capture_output=True, text=True, check=False)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(done.stdout.strip(), str(self.store / spec["digest"]))

    def test_a_store_of_someone_else_is_refused(self):
        spec = self.spec({"name": "open"})
        self.store.mkdir(mode=0o777)
        os.chmod(self.store, 0o777)
        done = self.ensure(spec)
        self.assertEqual(done.returncode, 1)
        self.assertIn("writable by others", done.stderr)
        self.assertIn("IMPLICIT_ENV_STORE", done.stderr)

    def test_an_unwritable_store_names_the_way_out(self):
        blocker = self.work / "file"
        blocker.write_text("not a folder")
        spec = dict(self.spec({"name": "ro"}), store=str(blocker / "store"))
        done = self.ensure(spec)
        self.assertEqual(done.returncode, 1)
        self.assertIn(f"cannot write the environment store {blocker / 'store'}", done.stderr)


if __name__ == "__main__":
    unittest.main()
