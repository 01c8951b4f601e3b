"""The package's boundaries (README: Layout) are checked by ``make lint`` (lint-imports,
contracts in pyproject.toml): a copy of the package where the call core imports the wire
API fails it, naming the contracts broken; the package as it is passes."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


pytestmark = pytest.mark.unit  # lint-imports on the source: no process of ivrbot runs


def lint_imports(where: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(where / "pyproject.toml")],
        cwd=where,
        env={"PYTHONPATH": str(where), "PATH": "/usr/bin:/bin", "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def copy_of_the_package(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "ivrbot", tmp_path / "ivrbot", ignore=shutil.ignore_patterns("static"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_package_keeps_its_contracts(tmp_path: Path) -> None:
    result = lint_imports(copy_of_the_package(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_core_module_importing_the_wire_api_fails_the_lint(tmp_path: Path) -> None:
    where = copy_of_the_package(tmp_path)
    bridge = where / "ivrbot" / "core" / "bridge.py"
    bridge.write_text(bridge.read_text() + "\nfrom ivrbot.wire.http import ApiError  # noqa\n")
    result = lint_imports(where)
    assert result.returncode != 0
    out = result.stdout
    assert "the call core imports no adapter and no web, flow or campaign code BROKEN" in out
    assert "layers: each imports only those below it BROKEN" in out
    assert "ivrbot.core.bridge -> ivrbot.wire.http" in out


def test_a_core_module_importing_aiohttp_fails_the_lint(tmp_path: Path) -> None:
    where = copy_of_the_package(tmp_path)
    switch = where / "ivrbot" / "core" / "switch.py"
    switch.write_text(switch.read_text() + "\nfrom aiohttp import web  # noqa\n")
    result = lint_imports(where)
    assert result.returncode != 0
    assert "the call core imports no HTTP, WebRTC, SIP or speech library BROKEN" in result.stdout
    assert "ivrbot.core.switch -> aiohttp" in result.stdout
