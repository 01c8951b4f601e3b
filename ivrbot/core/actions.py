"""The actions on a call: hold, resume, move, transfer, a media change, merge, answer. One
place does them (:func:`apply_action`), whether the request came over the wire API or was
relayed to the media worker the call runs on (ivrbot/workers)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from ivrbot.core.merge import merge_call
from ivrbot.core.switch_call import CallLeg

if TYPE_CHECKING:
    from ivrbot.core.switch import Switch


@dataclass(frozen=True)
class CallAction:
    """One ``x-calls-action`` on a call, checked: what :func:`apply_action` does (here, or
    on the media worker the call runs on: see ivrbot/workers). The wire API reads one from
    ``PUT .../calls/{cid}`` (ivrbot.wire.routes_calls)."""

    name: str
    sdp: str | None = None
    target: str = ""  # initiate-call-transfer: the session's other call
    conference_id: str = ""  # initiate-call-merge
    stay: bool = False  # initiate-call-merge mode
    media: str = ""  # initiate-call-mod: 'video' (upgrade) or 'audio' (downgrade)
    mod_id: str = ""  # accept-call-mod / reject-call-mod

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


async def apply_action(switch: Switch, leg: CallLeg, action: CallAction) -> str | None:
    """Do ``action`` on ``leg``; the modId for hold, resume and a media change. Reached
    through the leg's call handle (``leg.act``: core/handle.py)."""
    name = action.name
    if name == "call-answer":
        assert action.sdp is not None
        await switch.answer(leg, action.sdp)
    elif name in ("initiate-call-hold", "initiate-call-resume"):
        change = switch.hold if name == "initiate-call-hold" else switch.resume
        return await change(leg, action.sdp)
    elif name == "initiate-call-move":
        await switch.move(leg)
    elif name == "initiate-call-transfer":
        await switch.transfer(leg, action.target)
    elif name == "initiate-call-merge":
        await merge_call(switch, leg, action.conference_id, stay=action.stay)
    elif name == "initiate-call-mod":
        return await switch.modify(leg, action.media, action.sdp)
    else:
        accepted = name == "accept-call-mod"
        await switch.settle_mod(leg, action.mod_id, accepted, action.sdp)
    return None
