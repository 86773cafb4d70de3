"""The package as a user gets it: the README's commands, run as written (Debian's python3)
in a directory holding a copy of client/python, make a fresh virtual environment (no
system site packages) and install the package into it with no package index; the
installed package is typed, its flowgate-check runs from the environment's bin/, and the
README's Python examples run in it against the real daemon."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SOURCE_DIR, Daemon


def client_section() -> str:
    readme = (SOURCE_DIR / "README.md").read_text(encoding="utf-8")
    start = readme.index("\n## The client library\n")
    end = readme.find("\n## ", start + 1)
    return readme[start:end]


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```\n", client_section(), flags=re.S)


def run(line: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", line], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with the copy of client/python and the .venv the README makes there."""
    root = tmp_path_factory.mktemp("install")
    shutil.copytree(SOURCE_DIR / "client" / "python", root / "client" / "python",
                    ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    [commands] = [b for b in blocks("sh") if "pip install" in b]
    env = {key: value for key, value in os.environ.items() if not key.startswith("PIP_")}
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"  # python3: Debian's
    env["PIP_FIND_LINKS"] = ""
    for line in commands.splitlines()[:2]:
        assert line.startswith(("python3 -m venv ", ".venv/bin/pip install ")), line
        made = run(line, root, env)
        assert made.returncode == 0, f"{line}\n{made.stdout}\n{made.stderr}"
    return root


def test_the_readme_installs_the_package_offline_into_a_fresh_venv(installed: Path) -> None:
    [commands] = [b for b in blocks("sh") if "pip install" in b]
    assert "--no-index" in commands  # no package index is asked
    venv_python = installed / ".venv" / "bin" / "python"
    config = (installed / ".venv" / "pyvenv.cfg").read_text()
    assert "include-system-site-packages = false" in config
    # Fresh: Debian's pytest is not in it; the package is, typed, from site-packages.
    probe = subprocess.run(
        [str(venv_python), "-c", "import importlib.util, flowgate, pathlib;"
         "print(importlib.util.find_spec('pytest') is None);"
         "print(pathlib.Path(flowgate.__file__).parent)"],
        capture_output=True, text=True, cwd="/", check=True)
    no_pytest, package = probe.stdout.split("\n")[:2]
    assert no_pytest == "True"
    assert "site-packages" in package
    assert (Path(package) / "py.typed").is_file()
    assert (installed / ".venv" / "bin" / "flowgate-check").is_file()


def test_the_installed_flowgate_check_answers_0_1_2(installed: Path, daemon: Daemon) -> None:
    check = str(installed / ".venv" / "bin" / "flowgate-check")
    asked = ["--socket", str(daemon.socket), "--purpose", "health_services", "--data",
             "checkup_result", "--to"]
    assert subprocess.run([check, *asked, "prevent"], capture_output=True).returncode == 0
    assert subprocess.run([check, *asked, "employer"], capture_output=True).returncode == 1
    daemon.kill()
    assert subprocess.run([check, *asked, "prevent"], capture_output=True).returncode == 2


def test_the_readme_example_is_the_file_and_runs_as_shown(installed: Path, daemon: Daemon
                                                          ) -> None:
    example = SOURCE_DIR / "client" / "python" / "examples" / "check_transfer.py"
    assert example.read_text(encoding="utf-8") in blocks("python")
    [commands] = [b for b in blocks("sh") if "pip install" in b]
    line = commands.splitlines()[2]
    assert line.startswith(".venv/bin/python client/python/examples/check_transfer.py")
    env = {**os.environ, "FLOWGATE_SOCKET": str(daemon.socket)}
    ran = run(line, installed, env)
    assert ran.returncode == 0, ran.stderr
    assert re.fullmatch(r"allow by r3_j \(audit seq \d+\)\n  obligation: contract_reference\n",
                        ran.stdout)
    shown = re.search(r"```\n(allow by .*?)```\n", client_section(), flags=re.S)
    assert shown is not None
    assert re.sub(r"seq \d+", "seq N", shown.group(1)) == re.sub(r"seq \d+", "seq N",
                                                                  ran.stdout)
    daemon.kill()
    down = run(line, installed, env)
    assert down.returncode == 2
    assert "not running" in down.stderr


def test_every_other_python_block_of_the_readme_runs(installed: Path, daemon: Daemon) -> None:
    example = (SOURCE_DIR / "client" / "python" / "examples" / "check_transfer.py").read_text(
        encoding="utf-8")
    others = [b for b in blocks("python") if b != example]
    assert others
    for block in others:
        ran = subprocess.run([str(installed / ".venv" / "bin" / "python"), "-c", block],
                             capture_output=True, text=True, timeout=120,
                             env={**os.environ, "FLOWGATE_SOCKET": str(daemon.socket)})
        assert ran.returncode == 0, f"{block}\n{ran.stderr}"
    assert len(daemon.rows("kind = 'check'")) >= 2000
