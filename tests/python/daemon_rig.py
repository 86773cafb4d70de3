"""flowgated as its users run it, for the Python package's tests and its benchmark: the
real daemon in a temporary directory, with a copy of the bundled policy and an audit store
made by ``flowgated --init-store`` as an admin makes it; its audit rows read back from the
file, as an auditor would. The package is imported from the source tree
(client/python/src)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

SOURCE_DIR = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(SOURCE_DIR / "client" / "python" / "src"))

import flowgate  # noqa: E402


class RigError(Exception):
    """The daemon could not be made or started (its log says why)."""


class Daemon:
    """flowgated in a temporary directory: DIR/flowgated.sock, DIR/audit.db, DIR/policy."""

    def __init__(self, binary: str, root: Path, *, admin: bool = False,
                 durability: str = "full") -> None:
        self.dir = root
        self.socket = root / "flowgated.sock"
        self.db = root / "audit.db"
        self.policy = root / "policy"
        self.config = root / "flowgated.toml"
        self.log = root / "flowgated.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.policy.mkdir()
        for source in (SOURCE_DIR / "policies").glob("*.policy"):
            shutil.copy(source, self.policy / source.name)
        text = (
            f"socket = {json.dumps(str(self.socket))}\n"
            f"policy = {json.dumps(str(self.policy))}\n"
            f"audit_db = {json.dumps(str(self.db))}\n"
            f"durability = {json.dumps(durability)}\n"
            'log_level = "info"\n\n[limits]\n'
        )
        # The test's own uid, named; an admin when the test needs one.
        text += f'\n[[service]]\nuid = {os.getuid()}\nname = "python-client-test"\n'
        text += f"admin = {'true' if admin else 'false'}\n"
        self.config.write_text(text)
        self.binary = binary
        if self._run(["--init-store"]).wait(timeout=30) != 0:
            raise RigError(f"flowgated --init-store failed:\n{self.log.read_text()}")

    def _run(self, extra: list[str]) -> subprocess.Popen[bytes]:
        with open(self.log, "ab") as log:
            return subprocess.Popen(
                [self.binary, "--config", str(self.config), *extra],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )

    def start(self) -> None:
        self.process = self._run([])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RigError(f"flowgated exited during start-up:\n{self.log.read_text()}")
            try:
                with flowgate.Client.connect(self.socket, timeout=2) as client:
                    client.status()
                    return
            except flowgate.FlowgateError:
                time.sleep(0.02)
        raise RigError(f"flowgated did not answer within 30 s:\n{self.log.read_text()}")

    def signal(self, number: int) -> None:
        assert self.process is not None
        self.process.send_signal(number)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)  # a stopped daemon dies too
            self.process.kill()
            self.process.wait(timeout=30)

    def rows(self, where: str = "1", *arguments: Any) -> list[dict[str, Any]]:
        """The audit rows, in seq order, read from the file as an auditor reads it."""
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True) as db:
            db.row_factory = sqlite3.Row
            found = db.execute(f"SELECT * FROM audit_rows WHERE {where} ORDER BY seq", arguments)
            return [dict(row) for row in found.fetchall()]
