"""The Python package's test fixtures: the real daemon (daemon_rig.py; FLOWGATED names the
binary, and ctest passes the built one) in a temporary directory, always killed at the
end; and fake daemons, real socket servers that stay silent or answer wrongly."""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from daemon_rig import SOURCE_DIR, Daemon

__all__ = ["SOURCE_DIR", "Daemon"]


def built(variable: str) -> str:
    path = os.environ.get(variable, "")
    if not path or not os.access(path, os.X_OK):
        pytest.fail(f"{variable} must name the built binary (ctest sets it), not {path!r}")
    return path


@pytest.fixture
def tmp_dir() -> Iterator[Path]:
    # Short, under /tmp: a Unix socket's path is at most 107 bytes.
    path = Path(tempfile.mkdtemp(prefix="flowgate-py-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def make_daemon(tmp_dir: Path) -> Iterator[Callable[..., Daemon]]:
    """Starts daemons (``make_daemon(admin=True)``), each in its own directory."""
    daemons: list[Daemon] = []

    def make(*, admin: bool = False, start: bool = True) -> Daemon:
        root = tmp_dir / f"d{len(daemons)}"
        root.mkdir()
        daemon = Daemon(built("FLOWGATED"), root, admin=admin)
        daemons.append(daemon)
        if start:
            daemon.start()
        return daemon

    yield make
    for daemon in daemons:
        daemon.kill()


@pytest.fixture
def daemon(make_daemon: Callable[..., Daemon]) -> Daemon:
    return make_daemon()


@pytest.fixture(scope="module")
def shared_daemon() -> Iterator[Daemon]:
    """One daemon for a module's tests that neither stop it nor count its rows."""
    root = Path(tempfile.mkdtemp(prefix="flowgate-py-"))
    shared = Daemon(built("FLOWGATED"), root)
    try:
        shared.start()
        yield shared
    finally:
        shared.kill()
        shutil.rmtree(root, ignore_errors=True)


Answerer = Callable[[bytes], "bytes | list[bytes] | None"]


class FakeDaemon:
    """A real Unix socket server standing in for a broken or silent daemon: it accepts,
    reads lines, and answers each with what ``answer(request_line)`` returns (bytes to
    send, pieces to send one by one, or None for silence); every connection is kept open
    until the test ends."""

    def __init__(self, path: Path, answer: Answerer) -> None:
        self.path = path
        self.answer = answer
        self.received: list[bytes] = []
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(path))
        self._listener.listen(16)
        self._connections: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        self._listener.settimeout(0.05)
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._connections.append(conn)
            threading.Thread(target=self._talk, args=(conn,), daemon=True).start()

    def _talk(self, conn: socket.socket) -> None:
        buffer = b""
        try:
            while not self._stop.is_set():
                chunk = conn.recv(65536)
                if not chunk:
                    return
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    self.received.append(line)
                    reply = self.answer(line)
                    if isinstance(reply, bytes):
                        conn.sendall(reply)
                    for piece in reply if isinstance(reply, list) else []:
                        conn.sendall(piece)
                        time.sleep(0.001)
        except OSError:
            return

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        for conn in self._connections:
            conn.close()
        self._thread.join(timeout=5)


@pytest.fixture
def fake_daemon(tmp_dir: Path) -> Iterator[Callable[[Answerer], FakeDaemon]]:
    fakes: list[FakeDaemon] = []

    def make(answer: Answerer) -> FakeDaemon:
        fake = FakeDaemon(tmp_dir / f"fake{len(fakes)}.sock", answer)
        fakes.append(fake)
        return fake

    yield make
    for fake in fakes:
        fake.close()


def request_id(line: bytes) -> Any:
    return json.loads(line).get("id")
