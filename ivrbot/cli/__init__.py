"""The ``ivrbot`` command: ``main`` (run, demo, call) and a module per command group (calls,
campaign, dial, flows, models, sip)."""

from ivrbot.cli.main import main

__all__ = ["main"]
