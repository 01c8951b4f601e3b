"""Voicemail: answers 555-000-1012, the office's after-hours line.

Closed: "We are closed", the office hours, then a message after the tone (the pound key,
or 3 seconds of silence, ends it); thanks and goodbye. Open: the office hours, and an offer
to leave a message anyway (press 1) or end the call (press 2).

The hours are set below (``OPEN_DAYS``, ``OPENS``, ``CLOSES``, ``TIMEZONE``). The time is
read by :func:`now` when a call comes: the clock, or ``IVRBOT_NOW`` when the call's
environment (``call.env``) sets it, an ISO 8601 time such as ``2025-01-06T20:30`` (office
time unless it names a zone). Scenarios set it in their ``[env]`` table to test both sides
(flows/scenarios/voicemail.*.toml); the process environment is not changed.

``call.vars``: ``open`` (True/False), ``now`` (the time used), ``message`` (the Record
step's result: its ``path`` is the recording; the call's record lists it too).
"""

from collections.abc import Mapping
from datetime import datetime, time
from zoneinfo import ZoneInfo

from ivrbot.flow import Ask, Flow, FlowCall, FlowError, Hangup, Record, Say

OPEN_DAYS = (0, 1, 2, 3, 4)  # datetime.weekday(): Monday is 0
OPENS = time(9, 0)
CLOSES = time(17, 0)
TIMEZONE: str | None = None  # the office's zone, e.g. "Europe/Berlin"; None: this machine's
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def now(env: Mapping[str, str]) -> datetime:
    """The office's time now: ``IVRBOT_NOW`` when ``env`` sets it, else the clock."""
    zone = ZoneInfo(TIMEZONE) if TIMEZONE else None
    fixed = env.get("IVRBOT_NOW", "").strip()
    if not fixed:
        return datetime.now(zone)
    try:
        moment = datetime.fromisoformat(fixed)
    except ValueError:
        raise FlowError(
            f"IVRBOT_NOW={fixed!r} is not an ISO 8601 time such as 2025-01-06T20:30"
        ) from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=zone)
    return moment.astimezone(zone) if zone else moment


def is_open(moment: datetime) -> bool:
    return moment.weekday() in OPEN_DAYS and OPENS <= moment.time() < CLOSES


def _clock(t: time) -> str:
    hour = t.hour % 12 or 12
    minutes = f":{t.minute:02d}" if t.minute else ""
    return f"{hour}{minutes} {'AM' if t.hour < 12 else 'PM'}"


def hours_text() -> str:
    """The office hours in words, e.g. 'Monday to Friday, 9 AM to 5 PM'."""
    days = sorted(OPEN_DAYS)
    if len(days) > 2 and days == list(range(days[0], days[-1] + 1)):
        named = f"{DAY_NAMES[days[0]]} to {DAY_NAMES[days[-1]]}"
    else:
        named = ", ".join(DAY_NAMES[d] for d in days)
    return f"{named}, {_clock(OPENS)} to {_clock(CLOSES)}"


flow = Flow(
    "voicemail",
    number="5550001012",
    description="After-hours voicemail: office hours, then a message (or an offer of one).",
)


@flow.step("hours", goes_to=["offer", "closed"])
async def hours(call: FlowCall) -> str:
    """Open or closed, by the office hours above."""
    moment = now(call.env)
    call.vars["now"] = moment.isoformat(timespec="minutes")
    call.vars["open"] = is_open(moment)
    return "offer" if call.vars["open"] else "closed"


flow.add(
    Ask(
        "offer",
        f"We are open {hours_text()}, but nobody can take your call right now. "
        "To leave a message anyway, press 1. To end the call, press 2.",
        next="anyway",
        no_input="bye",
    ),
)


@flow.step("anyway", goes_to=["message", "bye"])
async def anyway(call: FlowCall) -> str:
    answer = call.vars["offer"]
    return "message" if answer.outcome == "dtmf" and answer.value == "1" else "bye"


flow.add(
    Say("closed", f"We are closed. Our office hours are {hours_text()}.", next="message"),
    Record(
        "message",
        prompt="Please leave a message after the tone. Press pound when you are done.",
        max_s=120,
        silence_s=3,
        next="thanks",
        no_input="bye",
    ),
    Hangup("thanks", "Thank you. We will call you back. Goodbye."),
    Hangup("bye", "Goodbye."),
)
