"""Shared fixtures: a real gateway on 127.0.0.1, real TTS, the real vosk model; a watch
over every log line of the run for the tokens and secrets the run issued; and the check
that every test carries exactly one lane (unit, contract or e2e: README, "Tests"); a
Phone's call state change that its table does not allow raises (in production it is logged)."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import vosk

from ivrbot.compose import Parts, assemble
from ivrbot.config import Settings
from ivrbot.phone import call_state
from ivrbot.speech.speech_model import load_model
from ivrbot.speech.tts import Synthesizer
from ivrbot.wire.server import GatewayServer
from tests.log_secrets import SecretWatch

LANES = ("unit", "contract", "e2e")


def pytest_configure(config: pytest.Config) -> None:
    call_state.STRICT = True  # a Phone's call state change its table does not allow fails


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Refuse the run when a test carries no lane or two (before ``-m`` deselects any). In
    an xdist worker, where a collection error is an unreadable crash, the test fails instead."""
    for item in items:
        marks = {mark.name for mark in item.iter_markers()}
        lanes = [lane for lane in LANES if lane in marks]
        if len(lanes) == 1:
            continue
        what = "no lane" if not lanes else "two lanes (" + ", ".join(lanes) + ")"
        line = (
            f"{item.nodeid} carries {what}: give it exactly one of pytest.mark.unit, "
            "pytest.mark.contract, pytest.mark.e2e (README, Tests)"
        )
        if not hasattr(config, "workerinput"):
            raise pytest.UsageError(line)
        item.add_marker(pytest.mark.unit)  # so that -m "not e2e" keeps it, and it fails
        item.runtest = functools.partial(pytest.fail, line, pytrace=False)  # type: ignore[method-assign]


@pytest.fixture
async def parts(tmp_path: Path, tts: Synthesizer) -> AsyncIterator[Parts]:
    """What ``ivrbot run`` assembles (the composition root), on a free port of 127.0.0.1
    with its own SQLite file, sharing the session's synthesiser; no bots until a test adds
    them (``await parts.serve(flow)``)."""
    settings = Settings(port=0, db=str(tmp_path / "gateway.db"), recordings=tmp_path / "rec")
    async with assemble(settings, tts=tts) as assembled:
        yield assembled


@pytest.fixture
async def gateway(parts: Parts) -> GatewayServer:
    assert parts.server is not None
    return parts.server


@pytest.fixture(scope="session")
async def tts(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Synthesizer]:
    cache: Path = tmp_path_factory.mktemp("prompts")
    async with Synthesizer(cache) as synth:
        yield synth


@pytest.fixture(scope="session")
async def model() -> vosk.Model:
    return await load_model()


@pytest.fixture(scope="session", autouse=True)
def no_secret_in_logs() -> Iterator[SecretWatch]:
    """Every log record of the run at INFO and above, checked at the end against every
    access token, refresh token, consent code and client secret issued during the run."""
    with SecretWatch() as watch:
        yield watch
    leaks = watch.leaks()
    assert not leaks, "secrets in log lines:\n" + "\n".join(leaks[:20])
