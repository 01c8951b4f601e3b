"""The OpenAPI document matches the routes, and schemathesis finds no server error."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import pytest

from ivrbot.phone.transport_remote import fetch_token
from ivrbot.web import WEB_PATHS
from ivrbot.wire.openapi import document
from ivrbot.wire.server import GatewayServer


def served_routes(server: GatewayServer) -> set[tuple[str, str]]:
    """The API routes: web pages (ivrbot.web) and static files are not part of the API."""
    out = set()
    for route in server.app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter")
        if path and path not in WEB_PATHS and route.method not in ("HEAD", "*"):
            out.add((route.method.lower(), re.sub(r"\{(\w+)\}", "{}", path)))
    return out


def documented_routes() -> set[tuple[str, str]]:
    return {
        (method, re.sub(r"\{(\w+)\}", "{}", path))
        for path, ops in document()["paths"].items()
        for method in ops
    }


@pytest.mark.contract
async def test_document_names_exactly_the_served_routes(gateway: GatewayServer) -> None:
    assert served_routes(gateway) == documented_routes()


@pytest.mark.e2e
async def test_schemathesis_finds_no_server_error(gateway: GatewayServer, tmp_path: Path) -> None:
    token = await fetch_token(gateway.url, "ACCOUNT_ID")
    st = Path(sys.executable).with_name("st")
    proc = await asyncio.create_subprocess_exec(
        str(st), "run", f"{gateway.url}/openapi.json",
        "--checks", "not_a_server_error",
        "--max-examples", "25",
        "--seed", "4733",
        "--request-timeout", "5",
        "--header", f"Authorization: Bearer {token}",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=tmp_path,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 600)
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text[-4000:]
