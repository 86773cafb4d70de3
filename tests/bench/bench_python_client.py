#!/usr/bin/python3
"""The Python package's speed against the real flowgated, which it starts itself (a new
store, durability full, in a temporary directory): decisions per second for checks asked
one after the other on one Client, for Client.batch() of N pipelined checks, and for one
AsyncClient shared by many tasks; then the C++ client doing the same against the same
daemon (bench_client), for the README's comparison. Run by hand, with a Release build:

    /usr/bin/python3 tests/bench/bench_python_client.py [--build build/release]
        [--seconds S] [--batch N] [--tasks 16,64,256] [--relaxed]

With durability full a check one after the other waits for its own fsync, whichever
client asks; --relaxed (synchronous=NORMAL) shows what the clients themselves cost.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))

from daemon_rig import SOURCE_DIR, Daemon  # noqa: E402  (it puts the package on the path)

import flowgate  # noqa: E402


def question(n: int) -> dict[str, Any]:
    """As bench_client asks: a quarter of them denied."""
    return flowgate.check_request("health_services", "employer" if n % 4 == 0 else "prevent",
                                  ["checkup_result"], subject=f"p-{n}")


def sequential(socket: Path, seconds: float) -> float:
    with flowgate.Client.connect(socket, timeout=60) as client:
        asked = 0
        start = time.monotonic()
        while time.monotonic() - start < seconds:
            client.check("health_services", "employer" if asked % 4 == 0 else "prevent",
                         ["checkup_result"], subject=f"p-{asked}")
            asked += 1
        return asked / (time.monotonic() - start)


def batched(socket: Path, seconds: float, size: int) -> float:
    with flowgate.Client.connect(socket, timeout=60) as client:
        asked = 0
        start = time.monotonic()
        while time.monotonic() - start < seconds:
            results = client.batch(question(asked + i) for i in range(size))
            assert all(isinstance(r, flowgate.Decision) for r in results)
            asked += size
        return asked / (time.monotonic() - start)


async def concurrent(socket: Path, seconds: float, tasks: int) -> float:
    async with await flowgate.AsyncClient.connect(socket, timeout=60) as client:
        asked = 0
        start = time.monotonic()

        async def task(n: int) -> None:
            nonlocal asked
            while time.monotonic() - start < seconds:
                await client.check("health_services", "employer" if n % 4 == 0 else "prevent",
                                   ["checkup_result"], subject=f"p-{n}-{asked}")
                asked += 1

        await asyncio.gather(*(task(n) for n in range(tasks)))
        return asked / (time.monotonic() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", type=Path, default=SOURCE_DIR / "build" / "release")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--tasks", default="16,64,256")
    parser.add_argument("--relaxed", action="store_true", help="durability relaxed")
    options = parser.parse_args()
    flowgated = options.build / "daemon" / "flowgated"
    bench_client = options.build / "tests" / "bench" / "bench_client"
    with tempfile.TemporaryDirectory(prefix="flowgate-bench-") as root:
        daemon = Daemon(str(flowgated), Path(root),
                        durability="relaxed" if options.relaxed else "full")
        daemon.start()
        try:
            print(f"Python client, sequential check(): "
                  f"{sequential(daemon.socket, options.seconds):.0f} decisions/s")
            print(f"Python client, batch() of {options.batch}: "
                  f"{batched(daemon.socket, options.seconds, options.batch):.0f} decisions/s")
            for tasks in (int(t) for t in options.tasks.split(",")):
                rate = asyncio.run(concurrent(daemon.socket, options.seconds, tasks))
                print(f"Python AsyncClient, {tasks} tasks: {rate:.0f} decisions/s")
            sys.stdout.flush()
            if bench_client.exists():
                subprocess.run([str(bench_client), "--socket", str(daemon.socket), "--seconds",
                                str(options.seconds), "--batch", str(options.batch)], check=True)
            else:
                print(f"({bench_client} is not built: no C++ figures)")
        finally:
            daemon.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
