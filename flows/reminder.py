"""Reminder: an outbound appointment reminder, for campaigns (calls out as 555-000-1013).

When the call is answered, answering-machine detection runs first
(``call.vars['answered_by']``). A person (or a call detection was not sure of) hears the
reminder and picks: 1 confirm, 2 cancel, 3 reschedule, 9 stop these calls (opt-out). An
answering machine gets a short message after its beep.

``call.vars['result']`` says how it ended: 'confirmed', 'canceled', 'reschedule',
'opted-out', 'no-answer' (no key pressed, or no valid one), 'voicemail' or
'machine-hangup' (a machine, and the campaign's policy is to hang up on machines). The campaign that
placed the call acts on it: an opted-out number belongs on its do-not-call list.

Try it: ``ivrbot dial reminder NUMBER`` against a running gateway, or the scenarios in
flows/scenarios/reminder.*.toml (``ivrbot flows test flows/scenarios -k reminder``).
"""

from ivrbot.flow import Ask, Flow, FlowCall, Hangup, Retry, Say, Set

CLINIC = "City Clinic"
WHEN = "tomorrow at 9"

flow = Flow(
    "reminder",
    number="5550001013",
    description="Outbound appointment reminder: confirm, cancel, reschedule or opt out.",
    detect_machine=True,
)


@flow.step("start", goes_to=["remind", "voicemail", "machine_hangup"])
async def start(call: FlowCall) -> str:
    """An answering machine gets a message (or nothing, when the campaign's machine policy
    is 'hangup'); anyone else is asked."""
    if call.vars.get("answered_by") != "machine":
        return "remind"
    return "machine_hangup" if call.vars.get("machine_policy") == "hangup" else "voicemail"


flow.add(
    Ask(
        "remind",
        f"Hello, this is {CLINIC}. You have an appointment {WHEN}. Press 1 to confirm, "
        "2 to cancel, 3 to reschedule, or 9 to stop these calls.",
        timeout_s=6,
        retry=Retry(attempts=2, no_input_prompts=("Sorry, I did not hear a key.",)),
        next="choice",
        no_input="no_answer",
    ),
)

BRANCHES = {"1": "confirm", "2": "cancel", "3": "reschedule", "9": "opt_out"}


@flow.step("choice", goes_to=[*BRANCHES.values(), "invalid", "no_answer"])
async def choice(call: FlowCall) -> str:
    """The branch of the key pressed; another key: the question again (twice at most)."""
    answer = call.vars["remind"]
    if answer.value in BRANCHES:
        return BRANCHES[answer.value]
    tries = call.vars["invalid_keys"] = call.vars.get("invalid_keys", 0) + 1
    return "invalid" if tries < 2 else "no_answer"


flow.add(
    Set("confirm", {"result": "confirmed"}, next="confirmed"),
    Hangup("confirmed", f"Thank you. Your appointment {WHEN} is confirmed. Goodbye."),
    Set("cancel", {"result": "canceled"}, next="canceled"),
    Hangup("canceled", "Your appointment is canceled. Call us when you need a new one. Goodbye."),
    Set("reschedule", {"result": "reschedule"}, next="rescheduling"),
    Hangup("rescheduling", "We will call you back to find a new time. Goodbye."),
    Set("opt_out", {"result": "opted-out"}, next="opted_out"),
    Hangup("opted_out", "You will not get these calls any more. Goodbye."),
    Say("invalid", "Sorry, that key is not one of the choices.", next="remind"),
    Set("no_answer", {"result": "no-answer"}, next="later"),
    Hangup("later", f"We will try again later. This was {CLINIC}. Goodbye."),
    Set("machine_hangup", {"result": "machine-hangup"}, next="hang_up"),
    Hangup("hang_up"),
    Set("voicemail", {"result": "voicemail"}, next="message"),
    Hangup(
        "message",
        f"This is {CLINIC} with a reminder of your appointment {WHEN}. Please call us to "
        "confirm. Goodbye.",
    ),
)
