"""Runs the real `tritonserver` that the pinned nvidia-pytriton wheel bundles.

`TritonServer` starts the server on free loopback ports with a private copy
of one model repository, polls it until live and ready, and stops it by its
own PID (SIGTERM, then SIGKILL of its process group). By default the
server and its python backend are located through the installed `pytriton`
package, never an absolute path; a `verification.installation.Installation`
names another server binary and/or backend folder. With `cpu_only`, the
private copy's KIND_GPU instance groups are served as KIND_CPU.

What the wheel's server needs to serve python-backend models (measured with
nvidia-pytriton 0.7.0, tritonserver 2.51.0):
- a backend directory holding `libtriton_python.so`,
  `triton_python_backend_utils.py` and the `triton_python_backend_stub` built
  for this interpreter's version (the wheel keeps one stub per version);
- `LD_LIBRARY_PATH` with the wheel's `nvidia_pytriton.libs`: a copied stub
  loses its `$ORIGIN` rpath and cannot find the bundled libcudart;
- `PATH` starting with this interpreter's directory: the stub embeds the
  system libpython3.X and finds its prefix (and so numpy) by looking up
  `python3` on PATH; `PYTHONPATH` alone does not work.
"""

import atexit
import functools
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from verification.installation import Installation, serve_on_cpu

_STARTUP_SECONDS = 60
_START_ATTEMPTS = 3
_STOP_SECONDS = 20
_POLL_SECONDS = 0.1


class ServerError(RuntimeError):
    """The server could not be started, reached or stopped."""

    def __init__(self, message, log_tail=""):
        """Keep the server log's tail in the message, where a failure shows it."""
        super().__init__(f"{message}\n--- tritonserver log tail ---\n{log_tail}" if log_tail
                         else message)


def pytriton_paths():
    """Locate the wheel's server, python backend, stubs and bundled libraries.

    Returns:
        A dict of paths: "binary", "backend", "stub", "libs".

    Raises:
        ServerError: when the wheel, or a part of it, is not installed.
    """
    try:  # here, not at the top: a user's Triton installation needs no wheel
        import pytriton
    except ImportError as err:
        raise ServerError(f"the pinned nvidia-pytriton wheel is not installed ({err}); install"
                          " third_party/python/e2e's lock, or name a Triton installation") from err
    package = pathlib.Path(pytriton.__file__).resolve().parent
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    paths = {
        "binary": package / "tritonserver" / "bin" / "tritonserver",
        "backend": package / "tritonserver" / "backends" / "python",
        "stub": package / "tritonserver" / "python_backend_stubs" / version
        / "triton_python_backend_stub",
        "libs": package.parent / "nvidia_pytriton.libs",
    }
    missing = sorted(name for name, path in paths.items() if not path.exists())
    if missing:
        raise ServerError(
            f"nvidia-pytriton at {package} lacks {missing} (python {version});"
            " install the pinned nvidia-pytriton wheel for this interpreter"
        )
    return paths


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago (bind port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def python_backend_directory(root, paths=None):
    """Make root/python with the pinned wheel's python backend and this interpreter's stub.

    Returns:
        root, a backend folder holding only `python/`.
    """
    paths = paths or pytriton_paths()
    python_dir = root / "python"
    python_dir.mkdir(parents=True)
    for name in ("libtriton_python.so", "triton_python_backend_utils.py"):
        shutil.copy2(paths["backend"] / name, python_dir / name)
    shutil.copy2(paths["stub"], python_dir / "triton_python_backend_stub")
    return root


def server_environment(paths, library_path=()):
    """The environment the pinned server and its python stubs need (see module doc).

    `library_path` folders come first on LD_LIBRARY_PATH (frameworks the
    backends in the backend folder need, verification.real_backends).
    """
    python_dir = pathlib.Path(sys.executable).parent
    if not (python_dir / "python3").exists():
        raise ServerError(
            f"{python_dir} has no 'python3'; the python backend stub finds numpy through"
            " the first python3 on PATH, so run the tests with the environment's python"
        )
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(python_dir), env.get("PATH", "/usr/bin:/bin")])
    libs = [*library_path, str(paths["libs"])]
    libs += [p for p in env.get("LD_LIBRARY_PATH", "").split(":") if p]
    env["LD_LIBRARY_PATH"] = ":".join(libs)
    return env


def pinned_paths(installation):
    """The wheel's paths when the installation's server is the pinned one, else None.

    The wheel's binary named by path (TRITON_SERVER) is still the pinned
    server: it needs the wheel's environment as much as the default does.
    """
    if installation.pinned_binary:
        return pytriton_paths()
    try:
        paths = pytriton_paths()
    except ServerError:
        return None  # no wheel here: a user's installation
    return paths if installation.binary.resolve() == paths["binary"].resolve() else None


@functools.cache
def log_directory():
    """Where server logs go: Bazel's undeclared-outputs dir (kept), else a temp dir."""
    outputs = os.environ.get("TEST_UNDECLARED_OUTPUTS_DIR")
    if outputs:
        return pathlib.Path(outputs)
    path = pathlib.Path(tempfile.mkdtemp(prefix="tritonserver_logs."))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


class TritonServer:
    """One tritonserver process serving one model repository."""

    def __init__(self, repository, label, log_dir=None, installation=None, cpu_only=False,
                 extra_args=()):
        """Prepare (but do not start) a server.

        Args:
            repository: model repository directory.
            label: short name used for the log file and shm region prefix.
            log_dir: directory of the log file (default: `log_directory()`).
            installation: the server and backend folder (default: the pinned wheel's).
            cpu_only: serve KIND_GPU instance groups as KIND_CPU (no GPU here).
            extra_args: more server options (e.g. --log-verbose=1).
        """
        self.extra_args = list(extra_args)
        self.repository = pathlib.Path(repository)
        self.installation = installation or Installation()
        self.cpu_only = cpu_only
        self.cpu_rewritten = 0
        self.label = label
        self.log_path = pathlib.Path(log_dir or log_directory()) / f"tritonserver_{label}.log"
        self.http_port = self.grpc_port = None
        self._process = None
        self._scratch = None

    @property
    def http_url(self):
        """host:port of the HTTP endpoint."""
        return f"127.0.0.1:{self.http_port}"

    @property
    def grpc_url(self):
        """host:port of the gRPC endpoint."""
        return f"127.0.0.1:{self.grpc_port}"

    def _command(self, binary, backend_dir, repository):
        return [
            str(binary),
            f"--model-repository={repository}",
            f"--backend-directory={backend_dir}",
            "--disable-auto-complete-config",
            "--model-control-mode=explicit",
            "--http-address=127.0.0.1", f"--http-port={self.http_port}",
            "--grpc-address=127.0.0.1", f"--grpc-port={self.grpc_port}",
            "--allow-metrics=false",
            f"--exit-timeout-secs={_STOP_SECONDS // 2}",
            # Unique shared-memory names, so concurrent servers never collide.
            f"--backend-config=python,shm-region-prefix-name=implicit_e2e_{os.getpid()}"
            f"_{self.http_port}_",
            *self.extra_args,
        ]

    def start(self):
        """Start the server and wait until it is live and ready.

        A port taken between `free_port` and the server's bind is retried with
        fresh ports.

        Raises:
            ServerError: when it exits early or is not ready in time.
        """
        for attempt in range(1, _START_ATTEMPTS + 1):
            try:
                self._start_once()
                return
            except ServerError:
                port_taken = "already in use" in self.log_tail().lower()
                self.stop()
                if not port_taken or attempt == _START_ATTEMPTS:
                    raise

    def _start_once(self):
        self._scratch = pathlib.Path(tempfile.mkdtemp(prefix="tritonserver."))
        chosen = self.installation
        paths = pinned_paths(chosen)
        pinned = paths is not None
        backend_dir = chosen.backend_dir or python_backend_directory(self._scratch / "backends")
        # A private copy: the stub writes __pycache__ next to model.py, which
        # must never land in the built tree (Bazel outputs, a user's repository).
        repository = shutil.copytree(self.repository, self._scratch / "models")
        if self.cpu_only:
            self.cpu_rewritten = serve_on_cpu(repository)
        self.http_port = self.grpc_port = free_port()
        while self.grpc_port == self.http_port:  # the OS may hand out the freed port again
            self.grpc_port = free_port()
        binary = paths["binary"] if pinned else chosen.binary
        command = self._command(binary, backend_dir, repository)
        # The pinned wheel's server needs its libraries and this interpreter on
        # PATH; a user's installation runs in the caller's environment.
        env = server_environment(paths, chosen.library_path) if pinned else dict(os.environ)
        with open(self.log_path, "wb") as log:
            self._process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                command, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, env=env,
                cwd=self._scratch, start_new_session=True,
            )
        atexit.register(self.stop)  # also when the test process is interrupted
        self._wait_ready()

    def _wait_ready(self):
        deadline = time.monotonic() + _STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise ServerError(
                    f"tritonserver exited with {self._process.returncode} while starting",
                    self.log_tail())
            if self._healthy("live") and self._healthy("ready"):
                return
            time.sleep(_POLL_SECONDS)
        raise ServerError(f"tritonserver not ready after {_STARTUP_SECONDS}s", self.log_tail())

    def _healthy(self, what):
        url = f"http://{self.http_url}/v2/health/{what}"
        try:
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - loopback
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def running(self):
        """Whether the server process is still running (a crash ends it)."""
        return self._process is not None and self._process.poll() is None

    def is_ready(self):
        """Whether the process still runs and reports live and ready."""
        running = self._process is not None and self._process.poll() is None
        return running and self._healthy("live") and self._healthy("ready")

    def stop(self):
        """Stop the server by its PID; SIGKILL its process group if it hangs.

        Returns:
            The server's exit status (None when it was never started).
        """
        atexit.unregister(self.stop)
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=_STOP_SECONDS)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)  # the group holds its stubs too
                process.wait()
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None
        return None if process is None else process.returncode

    def log_tail(self, lines=60):
        """The last lines of the server log."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self):
        """Start the server (stopping it again if start fails)."""
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info):
        """Stop the server."""
        self.stop()
