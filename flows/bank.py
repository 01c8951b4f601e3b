"""Bank: answers 555-000-1010. A small bank IVR: balances, and a person when you want one.

The main menu (a Menu step) takes a key or a spoken word: press 1 (or say 잔액, "balance")
for a balance, press 2 (or say 상담원, "agent") to talk to an agent; anything else is asked
again once, then the call ends. The speech model that installs from the
package registry is Korean, so the words are Korean; the prompts are English.

Balance: the caller keys in a six-digit account number and presses # (the # is optional once
six digits are in). A Python step looks it up in ``ACCOUNTS`` below (demo data: try 123456
or 654321) and says the balance; an unknown number may be keyed in again, twice.

Agent: a warm transfer to ``agent@ivrbot.local``. The caller hears music on hold while the
agent's phone rings; when the agent answers, the bot tells them the account number first
(from the call's variables) and then joins them with the caller, leaving the call. When no
agent answers in time (or the agent turns the call down), the caller is taken off hold,
hears an apology and can leave a voicemail (a Record step; # ends the message).
"""

from ivrbot.flow import Ask, Flow, FlowCall, Hangup, Menu, Record, Retry, Set, Transfer

AGENT = "agent@ivrbot.local"
ACCOUNTS = {  # account number -> (holder, balance in dollars)
    "123456": ("Jamie Kim", 1523.40),
    "654321": ("Alex Park", 87.05),
    "111111": ("Sam Lee", 0.0),
}
CHOICES = {"잔액": "1", "상담원": "2"}  # words the Korean model recognises well, as keys
OPTIONS = {"1": "account", "2": "agent"}
MAX_ACCOUNT_TRIES = 2

flow = Flow(
    "bank",
    number="5550001010",
    description="Balances by account number; a warm transfer to an agent, else voicemail.",
    language="ko",
    retry=Retry(
        attempts=2,
        no_input_prompts=("Sorry, I did not hear anything.",),
        no_match_prompts=("Sorry, I did not understand.",),
    ),
)

flow.add(
    Set("defaults", {"account_spoken": "not given"}),  # for the agent, when none is keyed in
    Menu(
        "menu",
        "Welcome to ivrbot bank. For your balance, press 1. To speak with an agent, press 2.",
        choices=CHOICES,
        options=OPTIONS,
        no_input="bye",
        no_match="bye",
    ),
)


flow.add(
    Ask(
        "account",
        "Please enter your six digit account number, then press pound.",
        digits=6,
        finish_key="#",
        timeout_s=8,
        next="balance",
        no_input="bye",
        secret=True,  # logs, records and the dashboard show <6 digits>; call.vars has it
    ),
)


def money(amount: float) -> str:
    dollars, cents = divmod(round(amount * 100), 100)
    return f"{dollars} dollars and {cents} cents"


@flow.step("balance", goes_to=["more", "account", "agent"])
async def balance(call: FlowCall) -> str:
    """Look the account up and say its balance (an unknown number: try again, then an agent)."""
    answer = call.vars.get("account")
    number = answer.value if answer is not None else ""
    spoken = " ".join(number)
    call.vars["account_number"], call.vars["account_spoken"] = number, spoken or "not given"
    if number in ACCOUNTS:
        _, amount = ACCOUNTS[number]
        await call.say(f"The balance of account {spoken} is {money(amount)}.")
        return "more"
    tries = call.vars["account_tries"] = call.vars.get("account_tries", 0) + 1
    await call.say(f"Sorry, we have no account {spoken}.")
    if tries < MAX_ACCOUNT_TRIES:
        return "account"
    await call.say("Let me find someone to help you.")
    return "agent"


flow.add(
    Menu(
        "more",
        "For another balance, press 1. To speak with an agent, press 2. Or just hang up.",
        choices=CHOICES,
        options=OPTIONS,
        no_input="bye",
        no_match="bye",
    ),
    Transfer(
        "agent",
        to=AGENT,
        mode="warm",
        announce="A caller from the bank line, about account {account_spoken}.",
        timeout_s=15,
        fallback="voicemail",
        say="Sorry, all our agents are busy.",
    ),
    Record(
        "voicemail",
        prompt="Please leave a message after the tone, and press pound when you are done.",
        max_s=60,
        silence_s=4,
        next="thanks",
        no_input="bye",
    ),
    Hangup("thanks", "Thank you. An agent will call you back. Goodbye."),
    Hangup("bye", "Thank you for calling ivrbot bank. Goodbye."),
)
