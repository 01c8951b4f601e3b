"""One exception root: every mistake a user can fix is a UserError, which the command line
prints as one line (no traceback)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ivrbot.config import ConfigError
from ivrbot.errors import IvrbotError, PhoneException, UserError
from ivrbot.flow.flow import FlowError
from ivrbot.scripted_call import ScriptError
from ivrbot.speech.models import ModelInstallError
from ivrbot.speech.speech_model import ModelNotFound
from ivrbot.speech.tts import SynthesisError, TtsUnavailable
from ivrbot.store.sqlite import StoreError
from ivrbot.testing.scenario_file import ScenarioError

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.unit
@pytest.mark.parametrize(
    "error",
    [FlowError, ConfigError, ModelNotFound, TtsUnavailable, ScenarioError, ScriptError,
     ModelInstallError],
)  # fmt: skip
def test_user_errors_share_one_root(error: type[Exception]) -> None:
    assert issubclass(error, UserError) and issubclass(error, IvrbotError)


@pytest.mark.unit
@pytest.mark.parametrize("error", [PhoneException, SynthesisError, StoreError])
def test_other_errors_are_ivrbot_errors_but_not_the_users(error: type[Exception]) -> None:
    assert issubclass(error, IvrbotError) and not issubclass(error, UserError)


@pytest.mark.unit
def test_a_flow_error_keeps_its_old_bases() -> None:
    """Code that caught ValueError for a bad flow still does."""
    assert issubclass(FlowError, ValueError) and issubclass(ConfigError, ValueError)


@pytest.mark.contract
def test_a_user_error_on_the_command_line_is_one_line(tmp_path: Path) -> None:
    """A ConfigError (a UserError) from ``ivrbot run``: caught by the root, one line."""
    proc = subprocess.run(
        [sys.executable, "-m", "ivrbot", "run", str(ROOT / "flows"), "--port", "0"],
        capture_output=True, text=True, cwd=tmp_path, timeout=60,
        env={**os.environ, "IVRBOT_DEV_MODE": "maybe", "IVRBOT_DB": str(tmp_path / "x.db")},
    )  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "ivrbot: error: IVRBOT_DEV_MODE='maybe': use auto, on or off"
    ]
