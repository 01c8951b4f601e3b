"""SIP over TLS with SRTP against UDP with plain RTP (issue 13): server CPU per call-second of
N calls at once from a baresip phone into the load harness's DTMF menu flow, through
``ivrbot run`` with a trunk taking both (``srtp = "optional"``). Each call hears the menu
prompt and holds for ``--hold`` seconds (no keys), then the phone hangs up. The SIP status
of the server during the calls says which transport and whether SRTP carried each one.

Run: .venv/bin/python bench/sip_secure.py [--levels 1,2,4] [--hold 12]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import load
from loadkit.flows import MENU_NUMBER
from loadkit.sip_server import idle_cpu_per_s, sip_server

from tests.endpoints.sip.peers import Baresip, self_signed

MODES = {"udp/rtp": "", "tls/srtp": ";mediaenc=srtp-mand"}


def sip_config(work: Path, port: int) -> Path:
    cert, key = self_signed(work)
    path = work / "sip.toml"
    path.write_text(
        f'port = {port}\ntransports = ["udp", "tls"]\ntls_cert_file = "{cert}"\n'
        f'tls_key_file = "{key}"\nmedia_ports = "44000-44999"\n\n'
        '[trunks.bench]\nallow = ["127.0.0.1"]\nsrtp = "optional"\n'
    )
    return path


def sip_status(server: load.Server) -> dict[str, Any]:
    with urllib.request.urlopen(f"{server.url}/sip/status", timeout=5) as response:
        data: dict[str, Any] = json.loads(response.read())
        return data


async def level(server: load.Server, work: Path, mode: str, n: int, hold_s: float) -> dict:  # type: ignore[type-arg]
    sip_port = int(sip_status(server)["transports"]["udp"])
    tls = mode.startswith("tls")
    uri = (
        f"sip:{MENU_NUMBER}@127.0.0.1:{sip_port + 1};transport=tls"
        if tls
        else f"sip:{MENU_NUMBER}@127.0.0.1:{sip_port}"
    )
    phone = Baresip(work, f"{mode.replace('/', '-')}-{n}", modules=("srtp",),
                    cafile=work / "sip.crt")  # fmt: skip
    await phone.start(f"<sip:bench@127.0.0.1:{phone.sip_port}>;regint=0{MODES[mode]}")
    c0, t0 = server.cpu_s(), time.monotonic()
    try:
        for _ in range(n):
            await phone.command("dial", uri)
            await asyncio.sleep(0.2)
        await asyncio.sleep(hold_s)
        calls = sip_status(server)["calls"]
        for _ in range(n):
            await phone.command("hangup")
            await asyncio.sleep(0.2)
        async with asyncio.timeout(10):
            while sip_status(server)["calls"]:
                await asyncio.sleep(0.1)
    finally:
        await phone.stop()
    cpu, wall = server.cpu_s() - c0, time.monotonic() - t0
    call_s = sum(c["seconds"] for c in calls)
    return {
        "mode": mode,
        "n": n,
        "up": len(calls),
        "srtp": sum(bool(c["srtp"]) for c in calls),
        "transport": sorted({c["transport"] for c in calls}),
        "cpu_s": cpu,
        "wall_s": wall,
        "call_s": call_s,
    }


async def run(levels: list[int], hold_s: float) -> list[dict]:  # type: ignore[type-arg]
    work = Path(tempfile.mkdtemp(prefix="ivrbot-sip-secure-"))
    (work / "warm-up").mkdir()
    (work / "warm-up" / "sip.crt").symlink_to(work / "sip.crt")
    rows = []
    with sip_server(work, sip_config(work, load.free_port())) as server:
        await level(server, work / "warm-up", "udp/rtp", 1, 3.0)  # imports, prompts
        idle = idle_cpu_per_s(server)
        print(f"[sip-secure] idle server: {idle * 1000:.1f} ms CPU per second", flush=True)
        for n in levels:
            for mode in MODES:
                row = await level(server, work, mode, n, hold_s)
                net = row["cpu_s"] - idle * row["wall_s"]
                row["ms_per_call_s"] = round(row["cpu_s"] * 1000 / row["call_s"], 1)
                row["net_ms_per_call_s"] = round(net * 1000 / row["call_s"], 1)
                rows.append(row)
                print(f"[sip-secure] {mode} N={n}: {row['up']} up ({row['srtp']} SRTP, "
                      f"{'/'.join(row['transport'])}), {row['ms_per_call_s']} ms CPU per "
                      f"call-second ({row['net_ms_per_call_s']} above idle)", flush=True)  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", default="1,2,4", help="concurrent SIP calls per level")
    parser.add_argument("--hold", type=float, default=12.0, help="seconds each call lasts")
    args = parser.parse_args()
    rows = asyncio.run(run([int(n) for n in args.levels.split(",")], args.hold))
    print()
    print("| N | mode | calls up (SRTP) | server CPU ms/call-s | above idle |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['n']} | {r['mode']} | {r['up']} ({r['srtp']}) | {r['ms_per_call_s']} | "
              f"{r['net_ms_per_call_s']} |")  # fmt: skip


if __name__ == "__main__":
    main()
