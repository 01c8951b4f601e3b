"""The media settings a process applies once, at start-up (by the composition root and the
``ivrbot`` command): they configure libraries that keep them per process (aioice's host
addresses and consent checks, vosk's model search and log, the aiortc patch's pre-encoded
prompts)."""

from __future__ import annotations

from ivrbot.config import Settings
from ivrbot.endpoints.webrtc.peer import set_ice_host_addresses, set_peer_timeout


def configure_media(settings: Settings) -> None:
    """ICE host addresses (``ice_hosts``), the peer timeout (``peer_timeout_s``), the speech
    model folder (``model``), vosk's log (``vosk_log``) and pre-encoded prompts
    (``preencode``: a setting of the aiortc patch, hotpath) from ``settings``. What a
    gateway alone uses (its legs' receive buffer, ``jitter_prefetch``) it takes from its
    own settings."""
    from ivrbot.endpoints.webrtc.hotpath import set_preencode
    from ivrbot.speech.speech_model import choose_model  # imports vosk

    set_preencode(settings.preencode)

    set_ice_host_addresses(settings.ice_hosts)
    set_peer_timeout(settings.peer_timeout_s)
    choose_model(settings.model, settings.vosk_log)
