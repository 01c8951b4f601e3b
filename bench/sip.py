"""SIP load (issue 13): N concurrent SIP calls from sipp (Debian's ``sip-tester``) with RTP
into the load harness's DTMF menu flow, through ``ivrbot run`` with a SIP trunk; server CPU
per call-second and completion, next to the WebRTC path (``bench/load.py``, in-process
bots) at the same N.

A sipp call: INVITE (PCMA + telephone-event), 200/ACK, G.711 audio from sipp's
``g711a.pcap``, RFC 4733 key 1 after the menu prompt, key 3 at the next menu, then the bot
says goodbye and hangs up (BYE from ivrbot): completed. Server CPU is read from /proc for
the ``ivrbot run`` process and its children (PJSIP's threads are in it).

Run: .venv/bin/python bench/sip.py [--levels 1,2,4,8] [--no-webrtc]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import load
from loadkit.flows import MENU_NUMBER
from loadkit.sip_server import idle_cpu_per_s, sip_server

PCAPS = Path("/usr/share/sip-tester")
SCENARIO = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="ivrbot DTMF menu">
  <send retrans="500"><![CDATA[
INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: sip:sipp@[local_ip]:[local_port]
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 8 101
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rtd="true"/>
  <send><![CDATA[
ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 1 ACK
Contact: sip:sipp@[local_ip]:[local_port]
Max-Forwards: 70
Content-Length: 0
]]></send>
  <nop><action><exec play_pcap_audio="{pcaps}/g711a.pcap"/></action></nop>
  <pause milliseconds="5500"/>
  <nop><action><exec play_pcap_audio="{pcaps}/dtmf_2833_1.pcap"/></action></nop>
  <pause milliseconds="3000"/>
  <nop><action><exec play_pcap_audio="{pcaps}/dtmf_2833_3.pcap"/></action></nop>
  <recv request="BYE" timeout="30000"/>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
Content-Length: 0
]]></send>
</scenario>
"""


def sip_config(work: Path, port: int) -> Path:
    path = work / "sip.toml"
    path.write_text(
        f'port = {port}\nmedia_ports = "44000-44999"\n\n[trunks.sipp]\nallow = ["127.0.0.1"]\n'
    )
    return path


def run_sipp(work: Path, sip_port: int, n: int) -> dict[str, Any]:
    """N calls at once (dialled within a second); completion from sipp's counters."""
    scenario = work / "menu.xml"
    scenario.write_text(SCENARIO.format(pcaps=PCAPS))
    stats = work / f"sipp-{n}.txt"
    began = time.monotonic()
    proc = subprocess.run(
        ["sipp", "-sf", str(scenario), "-s", MENU_NUMBER, "-i", "127.0.0.1",
         "-p", str(load.free_port()), "-mp", str(46000 + 100 * n), "-m", str(n), "-l", str(n),
         "-r", str(n), "-rp", "1000", "-nostdin", "-trace_screen",
         "-screen_file", str(stats), "-timeout", "90s", f"127.0.0.1:{sip_port}"],
        capture_output=True, text=True, timeout=150,
    )  # fmt: skip
    wall = time.monotonic() - began
    text = stats.read_text(errors="replace") if stats.exists() else proc.stdout + proc.stderr
    ok = re.search(r"Successful call\s*\|\s*\d+\s*\|\s*(\d+)", text)
    failed = re.search(r"Failed call\s*\|\s*\d+\s*\|\s*(\d+)", text)
    return {
        "completed": int(ok.group(1)) if ok else 0,
        "failed": int(failed.group(1)) if failed else n,
        "wall_s": wall,
        "exit": proc.returncode,
    }


def sip_path(levels: list[int], work: Path) -> list[dict[str, Any]]:
    sip_port = load.free_port()
    rows = []
    with sip_server(work, sip_config(work, sip_port)) as server:
        run_sipp(work, sip_port, 1)  # warm-up: first call pays for imports and prompts
        idle = idle_cpu_per_s(server)
        print(f"[sip] idle server: {idle * 1000:.1f} ms CPU per second", flush=True)
        for n in levels:
            c0 = server.cpu_s()
            result = run_sipp(work, sip_port, n)
            cpu = server.cpu_s() - c0
            call_s = result["completed"] * result["wall_s"]  # every call lasts the whole run
            net = cpu - idle * result["wall_s"]
            result.update(
                n=n,
                idle_ms_per_s=round(idle * 1000, 1),
                server_cpu_ms_per_call_s=round(cpu * 1000 / call_s, 1) if call_s else None,
                net_ms_per_call_s=round(net * 1000 / call_s, 1) if call_s else None,
            )
            rows.append(result)
            print(f"[sip] N={n}: {result['completed']}/{n} completed, "
                  f"{result['server_cpu_ms_per_call_s']} ms CPU per call-second "
                  f"({result['net_ms_per_call_s']} above idle)", flush=True)  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", default="1,2,4,8", help="concurrent SIP calls per level")
    parser.add_argument("--no-webrtc", action="store_true", help="skip the WebRTC path")
    args = parser.parse_args()
    if shutil.which("sipp") is None:
        sys.exit("sipp is not installed (make setup installs Debian's sip-tester)")
    levels = [int(n) for n in args.levels.split(",")]
    work = Path(tempfile.mkdtemp(prefix="ivrbot-sip-bench-"))
    sip = sip_path(levels, work)
    webrtc: dict[int, dict[str, Any]] = {}
    if not args.no_webrtc:
        report = load.main(["--paths", "local", "--max-n", str(max(levels)), "--burst", "0"])
        webrtc = {lv["n"]: lv for lv in report["paths"]["local"]["levels"]}
    print()
    print("| N | SIP completed | SIP server CPU ms/call-s | SIP above idle | WebRTC completed |"
          " WebRTC server CPU ms/call-s |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for row in sip:
        w = webrtc.get(row["n"], {})
        w_done = f"{w['completed']}/{w['calls']}" if w else "-"
        print(f"| {row['n']} | {row['completed']}/{row['n']} | "
              f"{row['server_cpu_ms_per_call_s']} | {row['net_ms_per_call_s']} | {w_done} | "
              f"{w.get('server_cpu_ms_per_call_s', '-')} |")  # fmt: skip
    print(
        "\nnote: SIP call-seconds count every call as lasting the whole level (sipp's run), "
        "so they are over-counted and the SIP cost per call-second is, if anything, "
        "under-stated by the ramp and set-up; WebRTC levels add ceil(N/4) speech calls and "
        "measure call-seconds per call (bench/load.py)."
    )


if __name__ == "__main__":
    main()
