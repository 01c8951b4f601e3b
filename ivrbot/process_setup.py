"""The media settings a process applies once, at start-up (by the composition root and the
``ivrbot`` command): they configure libraries that keep them per process (aioice's host
addresses and consent checks, vosk's model search and log)."""

from __future__ import annotations

from ivrbot.config import Settings
from ivrbot.endpoints.webrtc.peer import set_ice_host_addresses, set_peer_timeout


def configure_media(settings: Settings) -> None:
    """ICE host addresses (``ice_hosts``), the peer timeout (``peer_timeout_s``), the speech
    model folder (``model``), vosk's log (``vosk_log``), pre-encoded prompts
    (``preencode``) and the gateway legs' receive buffer (``jitter_prefetch``) from
    ``settings``."""
    from ivrbot.endpoints.webrtc import hotpath
    from ivrbot.speech.speech_model import choose_model  # imports vosk

    hotpath.PREENCODE = settings.preencode
    hotpath.GATEWAY_PREFETCH = settings.jitter_prefetch

    set_ice_host_addresses(settings.ice_hosts)
    set_peer_timeout(settings.peer_timeout_s)
    choose_model(settings.model, settings.vosk_log)
