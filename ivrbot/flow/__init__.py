"""Call flows: a graph of named steps a bot runs for every call."""

from ivrbot.flow.call import FlowCall
from ivrbot.flow.flow import Flow, FlowError
from ivrbot.flow.media_steps import Play, Record, RecordResult
from ivrbot.flow.steps import Answer, Ask, Goto, Hangup, Python, Retry, Say, Set, Step
from ivrbot.flow.transfer_steps import Move, Transfer, TransferResult

__all__ = [
    "Answer",
    "Ask",
    "Flow",
    "FlowCall",
    "FlowError",
    "Goto",
    "Hangup",
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
