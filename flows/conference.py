"""Conference bridge: answers 555-000-1014. Callers key in a room PIN and talk together.

The caller keys in a four-digit PIN (then #; the # is optional after four digits). A known
PIN puts the caller into that PIN's room (a Conference step): everyone there, the newcomer
included, hears "A caller has joined the conference", and from then on they all hear each
other. The bot leaves the call at once; the caller stays in the room until they hang up,
and a room closes when its last caller has left. A PIN that is too short is asked again;
an unknown PIN may be keyed in again, twice. PINs (demo data): 1234 and 5678.
"""

from ivrbot.flow import Ask, Conference, Flow, FlowCall, Hangup, Retry, Say

ROOMS = {"1234": "team", "5678": "board"}  # PIN -> room name
MAX_PIN_TRIES = 3

flow = Flow(
    "conference",
    number="5550001014",
    description="A conference bridge: a PIN per room, a join announcement.",
    retry=Retry(
        attempts=2,
        no_input_prompts=("Sorry, I did not hear anything.",),
        no_match_prompts=("A PIN has four digits.",),
    ),
)

flow.add(
    Say("welcome", "Welcome to the ivrbot conference bridge."),
    Ask(
        "pin",
        "Please enter your conference PIN, then press pound.",
        digits=4,
        min_digits=4,
        finish_key="#",
        timeout_s=8,
        next="check",
        no_input="bye",
        no_match="bye",
    ),
)


@flow.step("check", goes_to=["join", "pin", "bye"])
async def check(call: FlowCall) -> str:
    """A known PIN leads to its room; an unknown one may be keyed in again."""
    room = ROOMS.get(call.vars["pin"].value)
    if room is not None:
        call.vars["room"] = room
        return "join"
    tries = call.vars["bad_pins"] = call.vars.get("bad_pins", 0) + 1
    if tries >= MAX_PIN_TRIES:
        return "bye"
    await call.say("That PIN is not valid.")
    return "pin"


flow.add(
    Say("join", "Thank you. You are joining the conference."),
    Conference(
        "enter",
        room="{room}",
        announce="A caller has joined the conference.",
        say="Sorry, the conference cannot be joined now.",
        fallback="bye",
    ),
    Hangup("bye", "Goodbye."),
)
