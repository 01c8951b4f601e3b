"""Real SIP peers from Debian packages, run by the tests on 127.0.0.1: baresip (a phone,
driven over its ctrl_tcp interface, recording what it hears with its sndfile module),
kamailio (registrar/proxy) and sipp (load). Generated configs live in a tmp dir."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from ivrbot.testing.audio import sine

MODULES = Path("/usr/lib/baresip/modules")
MIC_SECONDS = 60  # how long baresip's microphone sends (silence)


def _free(port: int) -> bool:
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def free_port() -> int:
    """A port free on 127.0.0.1 for UDP and TCP, and the next one too (SIP listens on both;
    baresip puts TLS on the next port)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
        if port < 65535 and _free(port) and _free(port + 1):
            return port


def need(binary: str) -> str:
    """The binary's path; a clear skip when it is missing outside CI (in CI: a failure)."""
    path = shutil.which(binary) or (
        f"/usr/sbin/{binary}" if Path(f"/usr/sbin/{binary}").exists() else None
    )
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{binary} is missing: `make setup` installs it")
        pytest.skip(f"{binary} is not installed (make setup installs it)")
    return path


class Peer:
    """A peer process with its folder and log (``dir/log.txt``)."""

    dir: Path
    proc: asyncio.subprocess.Process | None = None

    def log(self) -> str:
        path = self.dir / "log.txt"
        return path.read_text(errors="replace") if path.exists() else ""

    async def wait_for_log(self, text: str, timeout_s: float = 10.0) -> str:
        """The first line of the log with ``text``, once there is one."""
        async with asyncio.timeout(timeout_s):
            while True:
                line = next((ln for ln in self.log().splitlines() if text in ln), None)
                if line is not None:
                    return line
                await asyncio.sleep(0.05)

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 5)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


class Baresip(Peer):
    """A baresip phone on 127.0.0.1 with a silent microphone and recorded ears."""

    def __init__(
        self,
        workdir: Path,
        user: str = "phone",
        codecs: tuple[str, ...] = ("g711", "g722"),
        mic_hz: float = 0.0,
        modules: tuple[str, ...] = (),
        cafile: Path | None = None,
        certificate: Path | None = None,
    ) -> None:
        self.codecs = codecs
        self.modules = modules  # more modules (say 'srtp' for ;mediaenc=srtp-mand)
        self.cafile = cafile  # the CA (a self-signed certificate) of TLS servers it calls
        self.certificate = certificate  # its own, for TLS calls to it (cert + key, PEM)
        self.mic_hz = mic_hz  # what the microphone sends: a sine (0: silence)
        self.binary = need("baresip")
        self.dir = workdir / f"baresip-{user}"
        self.dir.mkdir()
        self.sip_port = free_port()
        self.ctrl_port = free_port()
        self.user = user
        self._writer: asyncio.StreamWriter | None = None
        self._reader: asyncio.StreamReader | None = None
        self.events: list[dict[str, object]] = []

    def write_config(self, account: str) -> None:
        # before 'account': an account's ;mediaenc names a module already loaded
        modules = [*self.codecs, *self.modules, "aufile", "aubridge", "sndfile", "account",
                   "menu", "ctrl_tcp"]  # fmt: skip
        lines = [
            f"module_path {MODULES}",
            f"sip_listen 127.0.0.1:{self.sip_port}",
            "net_interface 127.0.0.1",
            "ausrc_srate 48000",
            "auplay_srate 48000",
            f"audio_source aufile,{self.dir / 'mic.wav'}",  # silence (keys ride its packets)
            "ausrc_channels 1",
            "audio_player aubridge,ear",  # nobody listens: sndfile keeps what was decoded
            f"snd_path {self.dir}",
            f"ctrl_tcp_listen 127.0.0.1:{self.ctrl_port}",
            "rtp_ports 30000-30999",
            "audio_buffer 20-160",
            "call_max_calls 4",
        ] + [f"module {m}.so" for m in modules]
        if self.cafile is not None:
            lines.append(f"sip_cafile {self.cafile}")
        if self.certificate is not None:  # TLS server on sip_port + 1
            lines.append(f"sip_certificate {self.certificate}")
        (self.dir / "config").write_text("\n".join(lines) + "\n")
        (self.dir / "accounts").write_text(account + "\n")
        (self.dir / "contacts").write_text("")
        with wave.open(str(self.dir / "mic.wav"), "wb") as mic:
            mic.setnchannels(1)
            mic.setsampwidth(2)
            mic.setframerate(48000)
            if self.mic_hz:
                mic.writeframes(sine(self.mic_hz, MIC_SECONDS, 48000, -14.0).tobytes())
            else:
                mic.writeframes(bytes(2 * 48000 * MIC_SECONDS))

    async def start(self, account: str | None = None) -> None:
        self.write_config(account or f"<sip:{self.user}@127.0.0.1:{self.sip_port}>;regint=0")
        with (self.dir / "log.txt").open("wb") as out:
            self.proc = await asyncio.create_subprocess_exec(
                self.binary, "-f", str(self.dir), "-v",
                stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=asyncio.subprocess.STDOUT,
            )  # fmt: skip
        for _ in range(100):
            try:
                self._reader, self._writer = await asyncio.open_connection(
                    "127.0.0.1", self.ctrl_port
                )
                break
            except OSError:
                await asyncio.sleep(0.05)
        else:
            raise RuntimeError(f"baresip did not start: {self.log()}")

    async def command(self, command: str, params: str = "") -> None:
        assert self._writer is not None
        body = json.dumps({"command": command, "params": params, "token": command}).encode()
        self._writer.write(str(len(body)).encode() + b":" + body + b",")
        await self._writer.drain()

    async def hangup(self) -> None:
        """Hang up, and wait until baresip has closed the call (and its recording)."""
        await self.command("hangup")
        await self.wait_for_log("audio: destroyed")

    async def stop(self) -> None:
        if self._writer is not None:
            self._writer.close()
        await super().stop()

    def speech_s(self, threshold_db: float = -35.0) -> float:
        """Seconds of what baresip heard louder than ``threshold_db`` (100 ms windows)."""
        pcm, rate = self.heard()
        n = rate // 10
        blocks = pcm[: pcm.size // n * n].astype(np.float64).reshape(-1, n)
        levels = 20 * np.log10(np.sqrt(np.mean(blocks**2, axis=1)) / 32768 + 1e-9)
        return float((levels > threshold_db).sum()) * 0.1

    def heard(self) -> tuple[np.ndarray, int]:
        """What baresip decoded from the call (its sndfile ``*-dec.wav``): PCM and rate."""
        files = sorted(self.dir.glob("*dec*.wav"), key=lambda f: f.stat().st_mtime)  # last call
        if not files:
            raise AssertionError(f"baresip recorded nothing; files: {list(self.dir.iterdir())}")
        with wave.open(str(files[-1])) as w:
            pcm = np.frombuffer(w.readframes(w.getnframes()), np.int16)
            return pcm, w.getframerate()


def self_signed(folder: Path, name: str = "sip") -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key (PEM files), made by openssl."""
    cert, key = folder / f"{name}.crt", folder / f"{name}.key"
    subprocess.run(
        [need("openssl"), "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


KAMAILIO_CFG = """#!KAMAILIO
debug=2
log_stderror=yes
fork=yes
children=1
tcp_children=1
disable_tcp=yes
auto_aliases=no
listen=udp:127.0.0.1:{port}
alias="127.0.0.1:{port}"
mpath="{modules}"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "auth.so"
modparam("usrloc", "db_mode", 0)

request_route {{
    if (!mf_process_maxfwd_header("10")) {{ sl_send_reply("483", "Too Many Hops"); exit; }}
    if (is_method("CANCEL")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}
    if (has_totag()) {{
        if (loose_route() || is_method("ACK|BYE|INVITE|UPDATE|INFO|REFER")) {{ t_relay(); }}
        exit;
    }}
    if (is_method("REGISTER")) {{
        if ($fU == "{user}" && !pv_auth_check("$fd", "{password}", "0", "1")) {{
            xlog("L_WARN", "REGISTER of $fU: bad or missing credentials\\n");
            auth_challenge("$fd", "0");
            exit;
        }}
        save("location");
        exit;
    }}
    record_route();
    if (!lookup("location")) {{ sl_send_reply("404", "Not Found"); exit; }}
    t_relay();
}}
"""


class Kamailio(Peer):
    """kamailio as registrar and proxy on 127.0.0.1; ``user`` must authenticate with
    ``password`` (digest), other users register without."""

    def __init__(self, workdir: Path, user: str, password: str) -> None:
        self.binary = need("kamailio")
        self.dir = workdir / "kamailio"
        self.dir.mkdir()
        self.port = free_port()
        self.user, self.password = user, password
        found = Path("/usr/lib").glob("*/kamailio/modules")
        self.modules = next(found, Path("/usr/lib/kamailio/modules"))

    async def start(self) -> None:
        modules = self.modules
        cfg = self.dir / "kamailio.cfg"
        cfg.write_text(KAMAILIO_CFG.format(port=self.port, modules=modules, user=self.user,
                                           password=self.password))  # fmt: skip
        with (self.dir / "log.txt").open("wb") as out:
            self.proc = await asyncio.create_subprocess_exec(
                self.binary, "-f", str(cfg), "-DD", "-E", "-n", "1",
                "-P", str(self.dir / "pid"), "-Y", str(self.dir),
                stdout=out, stderr=asyncio.subprocess.STDOUT,
            )  # fmt: skip
        for _ in range(100):
            if "INFO: <core>" in self.log() or "listening on" in self.log():
                break
            if self.proc.returncode is not None:
                break
            await asyncio.sleep(0.05)
        if self.proc.returncode is not None:
            raise RuntimeError(f"kamailio did not start: {self.log()}")


PBX_USER, PBX_PASSWORD = "201", "s3cret-201"  # the extension ivrbot registers as


@contextlib.asynccontextmanager
async def running_pbx(workdir: Path) -> AsyncIterator[Kamailio]:
    """kamailio on 127.0.0.1 where extension 201 registers with PBX_PASSWORD."""
    kamailio = Kamailio(workdir, PBX_USER, PBX_PASSWORD)
    await kamailio.start()
    try:
        yield kamailio
    finally:
        await kamailio.stop()
