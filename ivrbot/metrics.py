"""The process's Prometheus metrics (``GET /metrics``): the objects other parts update.

prometheus-client keeps them in its default registry, one set per process (as Prometheus
expects of a process it scrapes). Any part may add its own here: define it at module level
with an ``ivrbot_`` name and update it where the event happens. The SIP connector's state
(calls by trunk, registrations, rejected INVITEs) is read from its status at each scrape
(:func:`watch_sip`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

# seconds: prompt latencies are tens to hundreds of ms; speech results up to a few seconds
_LATENCY = (0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0)
_LATENESS = (0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)

CALLS_IN_PROGRESS = Gauge(
    "ivrbot_calls_in_progress", "Calls the gateway carries now (ringing or connected)"
)
CALLS = Counter("ivrbot_calls", "Calls the gateway carried, by how they ended", ["outcome"])
FLOW_CALLS = Counter(
    "ivrbot_flow_calls", "Calls run through a flow, by flow and outcome", ["flow", "outcome"]
)
ANSWER_TO_PROMPT = Histogram(
    "ivrbot_answer_to_prompt_seconds",
    "From a flow answering a call to its first prompt starting",
    buckets=_LATENCY,
)
KEY_TO_PROMPT = Histogram(
    "ivrbot_key_to_prompt_seconds",
    "From a keypad press reaching a flow to its next prompt starting",
    buckets=_LATENCY,
)
ASR_LATENCY = Histogram(
    "ivrbot_asr_seconds",
    "From the end of the caller's speech (endpoint found) to the recognised answer",
    buckets=_LATENCY,
)
FRAME_LATENESS = Histogram(
    "ivrbot_frame_lateness_seconds",
    "How late each 20 ms outbound audio frame left against its schedule (0: on time)",
    buckets=_LATENESS,
)

WEBHOOKS_DELIVERED = Counter(
    "ivrbot_webhooks_delivered", "Webhook events the receiver took (2xx), by event", ["event"]
)
WEBHOOKS_FAILED = Counter(
    "ivrbot_webhooks_failed",
    "Webhook events given up on (a 4xx, or every try failed), by event",
    ["event"],
)
WEBHOOK_RETRIES = Counter(
    "ivrbot_webhook_retries", "Webhook tries after a connection error, timeout or 5xx"
)

# the gateway's termination reasons (switch.Reason values) as outcome labels; any other
# reason is 'other' (labels stay a small fixed set)
OUTCOMES = {
    "Call terminated": "hangup",  # either party hung up after the answer
    "Call canceled": "canceled",
    "User busy": "busy",
    "User not found": "not-found",
    "Call answered elsewhere": "answered-elsewhere",
    "Call transferred": "transferred",
    "Call moved": "moved",
    "No answer": "no-answer",
    "Media failed": "media-failed",
    "Session ended": "session-ended",
    "Call merged into a conference": "merged",
    "Connection lost": "connection-lost",
}


def outcome_of(reason: str) -> str:
    """The ``outcome`` label of a call that ended for ``reason``."""
    return OUTCOMES.get(reason, "other")


class _SipCollector(Collector):
    """The SIP connector's state, read from its status() at each scrape."""

    def __init__(self, status: Callable[[], dict[str, Any]]) -> None:
        self.status = status

    def collect(self) -> Iterator[Metric]:
        status = self.status()
        calls = GaugeMetricFamily(
            "ivrbot_sip_calls", "SIP calls in progress, by trunk or account", labels=["via"]
        )
        by_trunk: dict[str, int] = {}
        for call in status["calls"]:
            by_trunk[call["trunk"]] = by_trunk.get(call["trunk"], 0) + 1
        for trunk, count in sorted(by_trunk.items()):
            calls.add_metric([trunk], count)
        yield calls
        registered = GaugeMetricFamily(
            "ivrbot_sip_registered",
            "1 when the account's last registration succeeded, else 0",
            labels=["account"],
        )
        for reg in status["registrations"]:
            registered.add_metric([reg["account"]], 1 if reg["active"] else 0)
        yield registered
        yield CounterMetricFamily(
            "ivrbot_sip_rejected", "SIP INVITEs turned away (address not allowed, ...)",
            value=status["rejected"],
        )  # fmt: skip


class _WorkersCollector(Collector):
    """The media workers' state (ivrbot/workers), read from the pool's status() at each
    scrape."""

    def __init__(self, status: Callable[[], list[dict[str, Any]]]) -> None:
        self.status = status

    def collect(self) -> Iterator[Metric]:
        workers = self.status()
        alive = GaugeMetricFamily(
            "ivrbot_worker_up", "1 while the media worker serves, 0 while it restarts",
            labels=["worker"],
        )  # fmt: skip
        calls = GaugeMetricFamily(
            "ivrbot_worker_calls", "Calls in progress on the media worker", labels=["worker"]
        )
        restarts = CounterMetricFamily(
            "ivrbot_worker_starts", "Times the media worker was started", labels=["worker"]
        )
        for worker in workers:
            label = [str(worker["index"])]
            alive.add_metric(label, 1 if worker["alive"] else 0)
            calls.add_metric(label, worker["calls"])
            restarts.add_metric(label, worker["starts"])
        yield from (alive, calls, restarts)


def with_workers(texts: list[tuple[str, str]]) -> bytes:
    """This process's metrics with the media workers' (``(index, exposition text)`` each)
    merged in, every worker sample labelled ``worker``: one family per name, as the
    exposition format wants."""
    families = {family.name: family for family in REGISTRY.collect()}
    for index, text in texts:
        for parsed in text_string_to_metric_families(text):
            family = families.get(parsed.name)
            if family is None:
                family = families[parsed.name] = Metric(
                    parsed.name, parsed.documentation, parsed.type, parsed.unit
                )
            for sample in parsed.samples:
                family.samples.append(sample._replace(labels={**sample.labels, "worker": index}))
    return generate_latest(_Families(list(families.values())))


class _Families:
    """What generate_latest reads: metric families to write out."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> list[Metric]:
        return self.families


def watch_workers(status: Callable[[], list[dict[str, Any]]]) -> Callable[[], None]:
    """Publish a worker pool's ``status()`` in /metrics; call the result to stop."""
    collector = _WorkersCollector(status)
    REGISTRY.register(collector)
    return lambda: REGISTRY.unregister(collector)


def watch_sip(status: Callable[[], dict[str, Any]]) -> Callable[[], None]:
    """Publish a SIP connector's ``status()`` in /metrics; call the result to stop."""
    collector = _SipCollector(status)
    REGISTRY.register(collector)
    return lambda: REGISTRY.unregister(collector)
