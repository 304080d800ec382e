"""The processes `manage.py demo` starts, watched in the foreground and stopped together.

Each step that starts something is one function taking the `Supervisor` (today the web console; a
task cluster or a scenario driver are further functions of the same shape).
"""

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

from .services import DemoDataError

HOST = "127.0.0.1"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@dataclass
class Child:
    """One process the demo started."""

    name: str
    process: subprocess.Popen
    log: Path | None = None

    @property
    def output_hint(self) -> str:
        return f"Read its output in {self.log}" if self.log else "Read its output above"

    @property
    def running(self) -> bool:
        return self.process.poll() is None


@dataclass
class Supervisor:
    """Starts child processes, notices when one dies, and stops them all (newest first)."""

    stop_timeout: float = 10.0
    children: list[Child] = field(default_factory=list)

    def start(self, name: str, argv: list[str], *, env: dict | None = None, log: Path | None = None) -> Child:
        # A session of its own: Ctrl-C reaches only the demo command, which then stops children in order.
        output = None
        if log is not None:
            log.parent.mkdir(parents=True, exist_ok=True)
            output = log.open("ab")  # the child keeps its own handle; ours closes with this process
        process = subprocess.Popen(
            argv, env=env, cwd=settings.BASE_DIR, start_new_session=True, stdout=output, stderr=output
        )
        child = Child(name, process, log)
        self.children.append(child)
        return child

    def first_dead(self) -> Child | None:
        return next((child for child in self.children if not child.running), None)

    def stop_all(self) -> None:
        """SIGTERM each child (its own PID only, never a process group), then SIGKILL what outlives the timeout."""
        for child in reversed(self.children):
            if child.running:
                child.process.send_signal(signal.SIGTERM)
        for child in reversed(self.children):
            try:
                child.process.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()

    def __enter__(self) -> "Supervisor":
        return self

    def __exit__(self, *exc) -> None:
        self.stop_all()


def log_path(name: str) -> Path:
    """Where a demo process writes its output (var/demo/<name>.log)."""
    return Path(settings.VAR_DIR) / "demo" / f"{name}.log"


def manage_py(*args: str) -> list[str]:
    """The command line for a manage.py command run by this interpreter."""
    return [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), *args]


def ensure_port_free(port: int) -> None:
    """Refuse early, in plain words, when something already listens on the port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((HOST, port))
        except OSError:
            raise DemoDataError(
                f"Port {port} on {HOST} is already in use, so the console cannot start there.",
                fix=f"Stop whatever uses port {port} (an earlier demo?), or run `make demo PORT={port + 1}`.",
                technical=f"bind(({HOST!r}, {port})) failed",
            ) from None


def start_web_console(supervisor: Supervisor, *, port: int, env: dict) -> Child:
    """The console on Django's development server (single process, no autoreload)."""
    argv = manage_py("runserver", f"{HOST}:{port}", "--noreload")
    if not settings.DEBUG:
        argv.append("--insecure")  # serve the admin's static files even without DEBUG
    return supervisor.start("web console", argv, env=env, log=log_path("web"))


def start_task_cluster(supervisor: Supervisor, *, env: dict) -> Child:
    """A django-q2 cluster running the ledger's steps (ORM broker on the same database)."""
    return supervisor.start("task cluster", manage_py("qcluster"), env=env, log=log_path("worker"))


def wait_until_healthy(child: Child, url: str, *, timeout: float = 60.0, interval: float = 0.25) -> dict:
    """Poll the health check until it answers 200; fail early if the process dies."""
    deadline = time.monotonic() + timeout
    last_problem = "no answer yet"
    while time.monotonic() < deadline:
        if not child.running:
            raise DemoDataError(
                f"The {child.name} stopped before it answered (exit code {child.process.returncode}).",
                fix=f"{child.output_hint}; fix the cause and run `make demo` again.",
            )
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - a local http URL we built
                if response.status == 200:
                    return json.loads(response.read() or b"{}")
                last_problem = f"HTTP {response.status}"
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            last_problem = str(getattr(exc, "reason", exc))
        time.sleep(interval)
    raise DemoDataError(
        f"The {child.name} did not answer {url} within {timeout:.0f} seconds ({last_problem}).",
        fix=f"{child.output_hint}; fix the cause and run `make demo` again.",
    )


def watch(supervisor: Supervisor, *, interval: float = 0.5) -> Child:
    """Block until a child exits on its own; return it (Ctrl-C or SIGTERM interrupt this with KeyboardInterrupt)."""
    while True:
        dead = supervisor.first_dead()
        if dead is not None:
            return dead
        time.sleep(interval)


def stop_on_signals() -> None:
    """Ctrl-C, `kill <pid>` and a closed terminal all stop the demo and its children cleanly.

    SIGINT is set explicitly because a shell starts background jobs with it ignored; SIGHUP because
    the children run in sessions of their own and would not see the terminal close.
    """

    def handler(signum, frame):
        raise KeyboardInterrupt

    for signum in STOP_SIGNALS:
        signal.signal(signum, handler)


def ignore_stop_signals() -> None:
    """While the children are being stopped, a second Ctrl-C must not cut that short (it takes seconds at most)."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
