"""The real chimatic server for the tests, as tests/browser/lib/server.js starts it: the binary
from CHIMATIC_BIN (default: the repository's debug build) on a port the OS picks, in a fresh
directory holding its embedded stores; the CLI runs in the same directory to make workspaces.
Also a webhook receiver on 127.0.0.1 that records what it is sent."""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Optional

import httpx

REPO = Path(__file__).resolve().parents[3]
BIN = Path(os.environ.get("CHIMATIC_BIN") or REPO / "target" / "debug" / "chimatic")
LOG_DIR = REPO / "target" / "sdk-python-logs"

START_DEADLINE = 60.0
CLI_DEADLINE = 60.0
STOP_GRACE = 10.0
LISTENING = re.compile(r"listening on (http://127\.0\.0\.1:\d+)")


def child_env(extra: Mapping[str, str]) -> dict[str, str]:
    """The caller's environment without any CHIMATIC_* setting or RUST_LOG, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHIMATIC_") and k != "RUST_LOG"}
    env.update({"RUST_LOG": "info", "NO_COLOR": "1"})
    env.update(extra)
    return env


SERVER_ENV = {
    "CHIMATIC_ALLOW_PRIVATE_DESTINATIONS": "1",
    "CHIMATIC_RETRY_SCHEDULE": "200ms,400ms,800ms",
}


@dataclass(frozen=True)
class Workspace:
    id: str
    api_key: str
    name: str


class Server:
    """`chimatic serve --listen 127.0.0.1:0 --data-dir DIR`, started and ready."""

    def __init__(self, name: str = "server") -> None:
        if not os.access(BIN, os.X_OK):
            raise RuntimeError(
                f"the chimatic binary is not at {BIN}: build it (cargo build -p chimatic) "
                "or set CHIMATIC_BIN"
            )
        self.dir = Path(tempfile.mkdtemp(prefix="chimatic-sdk-python-"))
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self._log_path = LOG_DIR / f"{name}.log"
        self._log_file = self._log_path.open("w", encoding="utf-8")
        self._log: list[str] = []
        self._lock = threading.Lock()
        self._url_found: queue.Queue[str] = queue.Queue()
        self.url = ""
        self._proc = subprocess.Popen(
            [str(BIN), "serve", "--listen", "127.0.0.1:0", "--data-dir", str(self.dir)],
            cwd=self.dir,
            env=child_env(SERVER_ENV),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        try:
            self.url = self._wait_listening()
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            with self._lock:
                self._log.append(line)
                self._log_file.write(line)
                self._log_file.flush()
            if not self.url:
                found = LISTENING.search(line)
                if found:
                    self._url_found.put(found.group(1))
        self._url_found.put("")  # the process closed its output: it exited

    def log(self) -> str:
        with self._lock:
            return "".join(self._log)

    def _wait_listening(self) -> str:
        try:
            url = self._url_found.get(timeout=START_DEADLINE)
        except queue.Empty:
            raise RuntimeError(
                f'no "listening on" line within {START_DEADLINE} s; the log:\n{self.log()}'
            ) from None
        if not url:
            raise RuntimeError(
                f"the server exited ({self._proc.wait()}) before listening; the log:\n{self.log()}"
            )
        return url

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_DEADLINE
        last = ""
        while time.monotonic() < deadline and self._proc.poll() is None:
            try:
                r = httpx.get(f"{self.url}/readyz", timeout=5)
                if r.status_code == 200:
                    return
                last = f"{r.status_code} {r.text}"
            except httpx.HTTPError as e:
                last = repr(e)
            time.sleep(0.05)
        raise RuntimeError(f"GET /readyz did not answer 200 (last: {last}); the log:\n{self.log()}")

    def cli(self, *args: str) -> Any:
        """`chimatic ARGS --data-dir DIR` in the server's directory; its last line as JSON."""
        out = subprocess.run(
            [str(BIN), *args, "--data-dir", str(self.dir)],
            cwd=self.dir,
            env=child_env({}),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=CLI_DEADLINE,
        )
        if out.returncode != 0:
            raise RuntimeError(
                f"chimatic {' '.join(args[:2])} exited {out.returncode}: {out.stderr}"
            )
        return json.loads(out.stdout.strip().splitlines()[-1])

    def create_workspace(self, name: str) -> Workspace:
        out = self.cli("workspace", "create", "--name", name)
        return Workspace(id=out["workspace_id"], api_key=out["api_key"], name=name)

    def stop(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._reader.join(5)
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        with self._lock:
            self._log_file.close()
        shutil.rmtree(self.dir, ignore_errors=True)


# ---- a webhook receiver ---------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class _Script:
    """What an HTTP server of the tests answers, request after request."""

    respond: Callable[[Received], tuple[int, dict[str, str], bytes]]
    received: list[Received] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)


class LocalHTTPServer:
    """An http.server on 127.0.0.1 in a thread, answering with `respond(request)`; every
    request it gets is kept in `received` (and its arrival time, monotonic, in `arrivals`)."""

    def __init__(
        self, respond: Optional[Callable[[Received], tuple[int, dict[str, str], bytes]]] = None
    ) -> None:
        script = _Script(respond or (lambda _r: (200, {}, b"")))
        self._script = script

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                got = Received(
                    self.command,
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                )
                with script.cond:
                    script.received.append(got)
                    script.arrivals.append(time.monotonic())
                    script.cond.notify_all()
                status, headers, out = script.respond(got)
                if status == 0:  # drop the connection without an answer
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("content-length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def received(self) -> list[Received]:
        with self._script.cond:
            return list(self._script.received)

    @property
    def arrivals(self) -> list[float]:
        with self._script.cond:
            return list(self._script.arrivals)

    def wait_for(self, predicate: Callable[[Received], bool], timeout: float = 30.0) -> Received:
        """The first request for which `predicate` holds, waiting for it up to `timeout`."""
        deadline = time.monotonic() + timeout
        with self._script.cond:
            while True:
                for r in self._script.received:
                    if predicate(r):
                        return r
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"no matching request within {timeout} s; got {self._script.received!r}"
                    )
                self._script.cond.wait(left)

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)


def wait_until(check: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05) -> Any:
    """Polls `check` until it returns something truthy (returned), or fails at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s (last: {value!r})")
        time.sleep(interval)
