"""Blind transfers handed to the PBX: a flow that transfers a SIP caller to a ``sip:`` URI,
or to a number of a trunk marked ``refer = true``, sends the caller's side a REFER instead
of bridging the target in the gateway. The far end (the PBX or phone) calls the target
itself; its NOTIFYs (100 Trying, 180 Ringing, 200 OK or a failure) are the transfer's
progress, kept in the flow's call record. On 200 the SIP call is hung up (BYE) and the
switch's call ends as ``transferred``; on a failure the caller stays with the flow."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pjsua2 as pj

from ivrbot.core.call_state import CallStateError
from ivrbot.core.switch import CallLeg, HandOff, Reason
from ivrbot.endpoints.sip.calls import CallRef
from ivrbot.endpoints.sip.dialout import dialled_number

if TYPE_CHECKING:
    from ivrbot.endpoints.sip.connector import SipConnector, SipParty

log = logging.getLogger(__name__)

REFER_TIMEOUT_S = 60.0  # the longest wait for the far end's final NOTIFY
SECURE_PREFIXES = ("sip:", "sips:")


def outcome_of(code: int) -> str:
    """A final NOTIFY's (or the REFER's) status -> the transfer's outcome."""
    if 200 <= code < 300:
        return "transferred"
    if code in (486, 600):
        return "busy"
    if code == 603:
        return "rejected"  # Decline (README "Outcomes")
    if code in (408, 480, 487):
        return "no-answer"
    return "failed"


@dataclass(eq=False)
class Referral:
    """One REFER in progress on a SIP call."""

    uri: str
    done: asyncio.Future[HandOff]
    progress: list[str] = field(default_factory=list)


class Referrer:
    """The switch's ``transfer_out`` (see the module's docstring)."""

    def __init__(self, connector: SipConnector) -> None:
        self.connector = connector
        self.referrals: dict[int, Referral] = {}  # by call key

    def refer_to(self, target: str) -> str | None:
        """The Refer-To URI for ``target``; None when the gateway bridges it itself."""
        if target.startswith(SECURE_PREFIXES):
            return target
        number = dialled_number(f"tel:{target}") if any(c.isdigit() for c in target) else ""
        trunk = self.connector.settings.trunk_dialling(number) if number else None
        if trunk is None or not trunk.refer:
            return None
        return trunk.dial_uri(number)

    def transfer_out(self, leg: CallLeg, target: str) -> asyncio.Future[HandOff] | None:
        """A REFER of the party across ``leg`` to ``target`` when it is a SIP call and the
        target is for the PBX; None otherwise (the gateway bridges the transfer)."""
        try:
            far = leg.call.other(leg)
        except CallStateError:
            return None
        party = next((p for p in self.connector.parties.values() if p.leg is far), None)
        uri = self.refer_to(target)
        if party is None or party.ended or uri is None or party.call.key in self.referrals:
            return None
        referral = Referral(uri, asyncio.get_running_loop().create_future())
        self.referrals[party.call.key] = referral
        self.connector.spawn(self._refer(party, referral))
        return referral.done

    async def _refer(self, party: SipParty, referral: Referral) -> None:
        key = party.call.key
        log.info("SIP call of %s: REFER to %s", party.session.user_id, referral.uri)
        try:
            await self.connector.stack.refer(party.call, referral.uri)
            result = await asyncio.wait_for(asyncio.shield(referral.done), REFER_TIMEOUT_S)
        except (pj.Error, LookupError) as exc:
            why = exc.info().strip() if isinstance(exc, pj.Error) else str(exc)
            result = ("failed", f"REFER not sent: {why}", ())
        except TimeoutError:
            result = ("no-answer", f"no final NOTIFY within {REFER_TIMEOUT_S:g} s",
                      tuple(referral.progress))  # fmt: skip
        finally:
            self.referrals.pop(key, None)
        if not referral.done.done():
            referral.done.set_result(result)
        if result[0] == "transferred":
            # after the flow has taken the result (its record says 'transferred'): the
            # caller is with the target now, so the SIP call and the switch's call end
            await asyncio.sleep(0)
            await self.connector.end_switch_call(party, Reason.TRANSFERRED, sip_code=200)
        else:
            log.warning("SIP REFER of %s to %s: %s (%s)", party.session.user_id,
                        referral.uri, result[0], result[1])  # fmt: skip

    def status(self, call: CallRef, code: int, reason: str, final: bool) -> None:
        """A NOTIFY (or the REFER's own failure) of the far end."""
        referral = self.referrals.get(call.key)
        if referral is None:
            return
        line = f"{code} {reason}".strip()
        referral.progress.append(line)
        log.info("SIP transfer to %s: %s", referral.uri, line)
        if (final or code >= 200) and not referral.done.done():
            why = "" if 200 <= code < 300 else line
            referral.done.set_result((outcome_of(code), why, tuple(referral.progress)))

    def ended(self, call: CallRef) -> None:
        """The SIP call ended while a REFER was pending."""
        referral = self.referrals.get(call.key)
        if referral is not None and not referral.done.done():
            ok = any(p.startswith("2") for p in referral.progress)
            outcome = "transferred" if ok else "failed"
            why = "" if ok else "the SIP call ended before the transfer"
            referral.done.set_result((outcome, why, tuple(referral.progress)))
