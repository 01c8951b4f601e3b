"""``ivrbot call``: a scripted caller that dials a running gateway and reports what happened.

It logs in as ``caller@<domain>`` with an ACCOUNT_ID token, dials, waits for the call to
connect, then runs the steps in order (before each one it waits for the far end's prompt to
finish), listens at the end, hangs up, and returns the timeline. The caller is
:class:`~ivrbot.testing.caller.SimulatedCaller`, the same one the tests and the demo use.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from ivrbot.config import Settings
from ivrbot.credentials import Credentials, refused
from ivrbot.errors import PhoneException, UserError
from ivrbot.media.sinks import WavRecorder, read_wav
from ivrbot.numbers import called_party_uri
from ivrbot.phone.calls import DTMF_TONES
from ivrbot.phone.transport import GatewayUnreachable, TokensRefused
from ivrbot.speech.tts import SynthesisError, Synthesizer, check_tts
from ivrbot.store.flow_outcome import failure_of, flow_record
from ivrbot.testing.caller import NotAnswered, SimulatedCaller
from ivrbot.timeline import Timeline

DEFAULT_GATEWAY = "http://127.0.0.1:8890"
STEP_KINDS = ("press", "say", "play")
ANSWER_TIMEOUT_S = 20.0  # ringing this long without an answer is "not answered"
PROMPT_TIMEOUT_S = 15.0  # how long to wait for a prompt before a step (or at the end)
HANGUP_TIMEOUT_S = 5.0

T = TypeVar("T")


class ScriptError(UserError):
    """A mistake the user can fix (the message names the fix); nothing was left running."""


@dataclass(frozen=True)
class ScriptStep:
    kind: str  # 'press' | 'say' | 'play'
    value: str  # digits, words, or a WAV file's path

    @property
    def option(self) -> str:
        return f"--{self.kind} {self.value}"


@dataclass
class CallScript:
    destination: str
    steps: list[ScriptStep] = field(default_factory=list)
    gateway: str = DEFAULT_GATEWAY
    user: str = "caller"
    voice: str = "ko"
    wait_s: float | None = None  # None: hear one more prompt (the answer to the last step)
    record: Path | None = None
    api_key: str = field(default="", repr=False)  # '' : IVRBOT_API_KEY, if set

    @property
    def credentials(self) -> Credentials:
        return Credentials.from_env(self.api_key)


@dataclass
class ScriptResult:
    result: str  # 'completed' | 'failed'
    destination: str
    gateway: str
    events: list[dict[str, Any]]
    heard_prompts: list[dict[str, Any]]  # each prompt heard, in order: seconds, text
    recording: str | None
    recorded_s: float
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "result": self.result,
            "destination": self.destination,
            "gateway": self.gateway,
            "events": self.events,
            "heard_prompts": self.heard_prompts,
            "recording": self.recording,
            "recorded_s": self.recorded_s,
            "problems": self.problems,
        }


async def _load_plays(steps: list[ScriptStep]) -> dict[str, tuple[np.ndarray, int]]:
    """Every --play file read up front, so a bad file stops the script before it dials."""
    plays: dict[str, tuple[np.ndarray, int]] = {}
    for step in steps:
        if step.kind != "play" or step.value in plays:
            continue
        try:
            plays[step.value] = await asyncio.to_thread(read_wav, step.value)
        except FileNotFoundError:
            raise ScriptError(f"--play {step.value}: no such file") from None
        except (OSError, ValueError) as exc:
            raise ScriptError(
                f"{exc}; give --play a 16-bit PCM WAV file "
                "(e.g. ffmpeg -i in.mp3 -ac 1 -sample_fmt s16 out.wav)"
            ) from None
    return plays


def check_script(script: CallScript, domain: str) -> None:
    """What can be checked without the gateway: the number, digits, words, paths."""
    dest = script.destination
    if called_party_uri(dest, domain) is None or "sip:" in dest or "tel:" in dest:
        raise ScriptError(
            f"{script.destination!r} is not a number ivrbot can call: give 10 digits "
            "(5550001000), 1 and the digits, or user@domain"
        )
    for step in script.steps:
        if step.kind not in STEP_KINDS:
            raise ScriptError(f"unknown step {step.kind!r}: use --press, --say or --play")
        if step.kind == "press" and not DTMF_TONES.match(step.value):
            raise ScriptError(
                f"--press {step.value!r}: give keypad keys only (0-9 * # A-D), e.g. --press 5"
            )
        if step.kind == "say" and not step.value.strip():
            raise ScriptError("--say needs words to speak, e.g. --say 메뉴")
    if script.wait_s is not None and script.wait_s < 0:
        raise ScriptError(f"--wait {script.wait_s:g}: give seconds >= 0")


def _open_recorder(path: Path | None) -> WavRecorder | None:
    if path is None:
        return None
    try:
        return WavRecorder(path)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ScriptError(
            f"--record {path}: {reason}; give a file in an existing, writable folder"
        ) from None


async def _synth_all(tts: Synthesizer, script: CallScript) -> None:
    """Synthesise every --say up front: errors come before the call, words come on time."""
    texts = [s.value for s in script.steps if s.kind == "say"]
    if not texts:
        return
    check_tts()
    for text in texts:
        try:
            await tts.synth(text, script.voice)
        except ValueError as exc:
            raise ScriptError(
                f"--voice {script.voice}: {exc}; `espeak-ng --voices` lists the voices"
            ) from None
        except SynthesisError as exc:
            raise ScriptError(f"--say {text}: speech synthesis failed: {exc}") from None


class _HungUp(Exception):
    """The far end ended the call while the caller was waiting or acting."""


class _Run:
    """One scripted call in progress."""

    def __init__(self, script: CallScript, caller: SimulatedCaller) -> None:
        self.script = script
        self.caller = caller
        self.problems: list[str] = []

    @property
    def hung_up(self) -> bool:
        return self.caller.disconnected.is_set()

    async def until_hangup(self, work: Awaitable[T]) -> T:
        """``work``, unless the far end hangs up first (then :class:`_HungUp`)."""
        task = asyncio.ensure_future(work)
        ended = asyncio.ensure_future(self.caller.disconnected.wait())
        try:
            await asyncio.wait((task, ended), return_when=asyncio.FIRST_COMPLETED)
        finally:
            ended.cancel()
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if task.cancelled():
            raise _HungUp
        return task.result()

    async def hear_prompt(self, timeout_s: float) -> bool:
        """Wait for a prompt to be heard to its end; False when none came (or a hangup)."""
        try:
            await self.until_hangup(self.caller.hear_prompt(timeout_s=timeout_s))
        except (TimeoutError, _HungUp):
            return False
        return True

    async def steps(self, plays: dict[str, tuple[np.ndarray, int]]) -> None:
        for step in self.script.steps:
            heard = await self.hear_prompt(PROMPT_TIMEOUT_S)
            if self.hung_up:
                self.problems.append(f"the far end hung up before {step.option}")
                return
            if not heard:
                self.problems.append(
                    f"heard no prompt within {PROMPT_TIMEOUT_S:g} s before {step.option}"
                )
            try:
                await self.until_hangup(self._do(step, plays))
            except _HungUp:
                self.problems.append(f"the far end hung up during {step.option}")
                return
            except PhoneException as exc:
                self.problems.append(f"{step.option} failed: {exc.error.error_message}")
                return

    async def _do(self, step: ScriptStep, plays: dict[str, tuple[np.ndarray, int]]) -> None:
        if step.kind == "press":
            await self.caller.press(step.value)
        elif step.kind == "say":
            await self.caller.say(step.value, self.script.voice)
        else:
            pcm, rate = plays[step.value]
            await self.caller.play(pcm, rate, step.value)

    async def listen(self) -> None:
        """The end: one more prompt (no --wait), or --wait seconds of listening."""
        if self.hung_up:
            return
        wait_s = self.script.wait_s
        if wait_s is None:
            await self.hear_prompt(PROMPT_TIMEOUT_S)
            return
        if wait_s <= 0:
            return
        self.caller.note("listen", seconds=wait_s)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while not self.hung_up and (left := deadline - loop.time()) > 0.05:
            if not await self.hear_prompt(left):
                break
        left = deadline - loop.time()
        if left > 0 and not self.hung_up:
            with contextlib.suppress(_HungUp):
                await self.until_hangup(asyncio.sleep(left))

    async def hang_up(self) -> None:
        phone = self.caller.phone
        if self.hung_up or phone.current_call is None:
            return
        try:
            await self.caller.hangup()
        except PhoneException as exc:
            self.problems.append(f"hanging up failed: {exc}")
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.caller.disconnected.wait(), HANGUP_TIMEOUT_S)


def _user_and_domain(user: str, default_domain: str) -> tuple[str, str]:
    name, _, domain = user.partition("@")
    if not name:
        raise ScriptError(f"--user {user!r}: give a user name, e.g. --user caller")
    return name, domain or default_domain


async def run_script(script: CallScript) -> ScriptResult:
    """Make the call. Raises :class:`ScriptError` when it cannot be made at all (gateway not
    running, number not answered, bad input); what goes wrong during the call is reported
    in the result's ``problems``."""
    user, domain = _user_and_domain(script.user, Settings().domain)
    check_script(script, domain)
    plays = await _load_plays(script.steps)
    timeline = Timeline()
    async with Synthesizer() as tts:
        await _synth_all(tts, script)
        caller = SimulatedCaller(script.gateway, tts, timeline, user=user, domain=domain,
                                 credentials=script.credentials)  # fmt: skip
        run = _Run(script, caller)
        recorder = _open_recorder(script.record)
        try:
            await _dial(caller, script, recorder)
            await run.steps(plays)
            await run.listen()
            await run.hang_up()
            caller.finish_hearing()  # a prompt cut short by the hang-up was heard too
            leg = (caller.call.id if caller.call else None) or ""
            record = await flow_record(Settings().db, leg)
            if record is not None:  # the flow's record names the prompts heard
                caller.name_prompts(record.get("prompts", []), record.get("prompts_at", []))
            failure = failure_of(record)
            if failure:  # the caller heard an apology: the flow's record says what failed
                run.problems.append(f"the flow failed: {failure}")
        finally:
            await caller.close()
            if recorder is not None:
                try:
                    await recorder.aclose()
                except OSError as exc:
                    run.problems.append(str(exc))
    return ScriptResult(
        result="failed" if run.problems else "completed",
        destination=script.destination,
        gateway=script.gateway,
        events=[e.to_dict() for e in timeline.entries],
        heard_prompts=[h.to_dict() for h in caller.heard],
        recording=str(script.record) if script.record is not None else None,
        recorded_s=round(recorder.duration_s, 2) if recorder is not None else 0.0,
        problems=run.problems,
    )


async def _dial(caller: SimulatedCaller, script: CallScript, recorder: WavRecorder | None) -> None:
    destination, url = script.destination, script.gateway
    try:
        await caller.dial(destination, ANSWER_TIMEOUT_S, also=recorder)
    except TokensRefused as exc:
        raise ScriptError(refused(exc.status, exc.reason, exc.presented)) from None
    except GatewayUnreachable as exc:
        detail = f" ({exc})" if "HTTP" in str(exc) else ""
        raise ScriptError(
            f"no ivrbot gateway answers at {url}{detail}: start one with `ivrbot run flows`, "
            "or point --gateway (or IVRBOT_GATEWAY) at yours"
        ) from None
    except NotAnswered as exc:
        raise ScriptError(
            f"{destination} was not answered ({exc}): check the number; `ivrbot run flows` "
            "prints the numbers its bots answer"
        ) from None
    except TimeoutError:
        raise ScriptError(
            f"{destination} rang for {ANSWER_TIMEOUT_S:g} s without an answer: is the bot "
            "for that number running and answering?"
        ) from None
    except PhoneException as exc:
        if exc.error.js_method == "login":
            raise ScriptError(
                f"logging in to {url} as {caller.user_id} failed ({exc.error.error_message}): "
                "is that an ivrbot gateway, and is --user a valid name?"
            ) from None
        raise ScriptError(f"dialling {destination} failed: {exc.error.error_message}") from None
