"""A flow that hands callers on (a Transfer step): its calls stay in the gateway's process."""

from ivrbot.flow import Flow, Say, Transfer

flow = Flow("front", number="5550002101", description="Transfers (media worker tests).")
flow.add(
    Say("hello", "Hello, connecting you."),
    Transfer("handoff", to="5550002199", timeout_s=2.0, fallback="sorry"),
    Say("sorry", "Nobody is free. Goodbye."),
)
