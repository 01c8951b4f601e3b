"""Welcome: answers 555-000-1000, greets, takes a digit or a spoken word, confirms it.

The caller may press any key, or say one of the words below. The speech model that
installs from the package registry is Korean, so the words are Korean: 메뉴 (menu),
예약 (booking), 아니요 (no). The bot keeps offering the menu until the caller is silent
or hangs up.
"""

from ivrbot.flow import Ask, Flow, FlowCall, Hangup, Retry

flow = Flow(
    "welcome",
    number="5550001000",
    description="Greets, takes a digit or a spoken word, confirms it.",
    language="ko",
    # each Ask routes its own misses at once: a word it does not know -> 'again' (a second
    # prompt), silence -> goodbye (the default would ask 3 times first)
    retry=Retry(attempts=1),
)

CHOICES = {"메뉴": "menu", "예약": "booking", "아니요": "no", "아니오": "no"}

flow.add(
    Ask(
        "menu",
        "Welcome to ivrbot. Press a key, or say a word.",
        choices=CHOICES,
        next="confirm",
        no_input="bye",
        no_match="again",
    ),
)


@flow.step("confirm", goes_to=["more"])
async def confirm(call: FlowCall) -> str:
    """Say back what the caller gave at the last Ask."""
    answer = call.last_answer
    if answer is not None and answer.outcome == "dtmf":
        await call.say(f"You pressed {answer.value}.")
    elif answer is not None:
        await call.say(f"You said {answer.value}.")
    return "more"


flow.add(
    Ask(
        "more",
        "Anything else? Press a key, or say a word.",
        choices=CHOICES,
        next="confirm",
        no_input="bye",
        no_match="again",
    ),
    Ask(
        "again",
        "Sorry, I did not catch that. Press a key, or say a word.",
        choices=CHOICES,
        next="confirm",
        no_input="bye",
        no_match="bye",
    ),
    Hangup("bye", "Goodbye."),
)
