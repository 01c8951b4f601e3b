"""Media workers: a call's media and its bot in another process, one per core.

One aiortc process carries about 8-10 legs (docs/facts.md), so ``ivrbot run --workers N``
(``IVRBOT_MEDIA_WORKERS``) starts N worker processes beside the gateway. The gateway keeps
the signalling (the wire API, sessions, tokens, event channels) in one place; a call from a
WebRTC caller to a flow's number goes to a worker, which answers the caller's offer with a
peer connection of its own and runs the flow's bot on it inside its own gateway (the
in-process path: no second leg, no codec). Each call's media and bot live in one worker; the
caller's ICE and RTP go straight to that worker.

- :mod:`.link`: newline-delimited JSON requests, replies and events over a socket pair;
- :mod:`.pool` (gateway side): starts and watches the workers, routes calls to the least
  busy one, relays call operations to it and its events back; a worker that dies ends its
  calls (``Media failed``, records settled ``interrupted``) and is started again;
- :mod:`.host` (worker side): the worker's copy of each caller's session, whose events go
  back to the gateway, and the call operations applied to the worker's own switch;
- :mod:`.worker`: the worker process (the same Runner as ``ivrbot run``, flows watched);
- :mod:`ivrbot.core.relayed`: what the gateway keeps of a call on a worker (its call
  handle: actions and the end go to the worker, which does them on its own call's handle).

Flows whose steps join the caller with parties outside the call (Transfer, Move,
Conference: :meth:`ivrbot.flow.flow.Flow.reaches_others`) stay in the gateway's process,
where those parties are; so do SIP calls and campaign calls (placed by the gateway's bots).
"""
