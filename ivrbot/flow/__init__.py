"""Call flows: a graph of named steps a bot runs for every call."""

from ivrbot.flow.call import FlowCall
from ivrbot.flow.conference_steps import Conference, ConferenceResult
from ivrbot.flow.flow import Flow, FlowError
from ivrbot.flow.media_steps import Play, Record, RecordResult
from ivrbot.flow.steps import Answer, Ask, Goto, Hangup, Menu, Python, Retry, Say, Set, Step
from ivrbot.flow.transfer_steps import Move, Transfer, TransferResult

__all__ = [
    "Answer",
    "Ask",
    "Conference",
    "ConferenceResult",
    "Flow",
    "FlowCall",
    "FlowError",
    "Goto",
    "Hangup",
    "Menu",
    "Move",
    "Play",
    "Python",
    "Record",
    "RecordResult",
    "Retry",
    "Say",
    "Set",
    "Step",
    "Transfer",
    "TransferResult",
]
