"""The record of one call through a flow: path, prompts, inputs, outcome, recordings."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from ivrbot.store.nodes import this_node


@dataclass
class FlowRecord:
    """What one call did in a flow (the gateway's own record of the call is the store's
    ``CallRecord``)."""

    flow: str
    caller: str  # the other party, as data (+15550001000, pat@ivrbot.local): who called
    # (inbound), or who was called (outbound)
    id: str = field(default_factory=lambda: secrets.token_hex(6))
    started_at: float = field(default_factory=time.time)
    ended_at: float | None = None
    path: list[str] = field(default_factory=list)
    prompts: list[str] = field(default_factory=list)
    prompts_at: list[float] = field(default_factory=list)  # when each prompt began (wall time)
    # each answer as it may be shown (Answer.shown: secret entries masked, never kept at
    # rest); the flow has the values in call.vars while the call runs
    inputs: list[dict[str, Any]] = field(default_factory=list)
    # '' while the call runs (stored as 'in-progress'; 'interrupted' if the process died)
    # | 'completed' (the flow hung up or ran out of steps) | 'caller-hangup' | 'error'
    # | 'transferred' (a Transfer step handed the caller on) | 'moved' (a Move step)
    # | 'conferenced' (a Conference step put the caller in a room)
    # | 'abandoned' (the caller hung up while it rang: Flow(rings=N))
    # | 'no-input' / 'no-match' (the bot gave up: a Menu or Ask got no usable answer)
    outcome: str = ""
    error: str = ""
    recordings: list[str] = field(default_factory=list)  # files recorded during the call
    transfers: list[dict[str, Any]] = field(default_factory=list)  # Transfer / Move attempts
    conferences: list[dict[str, Any]] = field(default_factory=list)  # Conference steps
    call_id: str = ""  # the call's id at the gateway, as the bot's session knows it
    node: str = field(default_factory=this_node)  # the process running the call
    direction: str = "inbound"  # 'inbound': caller -> number; 'outbound': number -> caller
    number: str = ""  # the bot's own party (its flow's number, 'vtn:5550001010')

    def said(self, text: str, at: float) -> None:
        """The bot began to say ``text`` at ``at`` (its call's clock.time(): a caller's
        report names the prompts it heard by these times)."""
        self.prompts.append(text)
        self.prompts_at.append(round(at, 3))

    @property
    def digits(self) -> str:
        return "".join(i["value"] for i in self.inputs if i["outcome"] == "dtmf")

    @property
    def speech(self) -> list[str]:
        return [i["value"] for i in self.inputs if i["outcome"] == "speech"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "flow": self.flow,
            "caller": self.caller,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "path": self.path,
            "prompts": self.prompts,
            "prompts_at": self.prompts_at,
            "inputs": self.inputs,
            "outcome": self.outcome or "in-progress",
            "error": self.error,
            "recordings": self.recordings,
            "transfers": self.transfers,
            "conferences": self.conferences,
            "call_id": self.call_id,
            "node": self.node,
            "direction": self.direction,
            "number": self.number,
        }
