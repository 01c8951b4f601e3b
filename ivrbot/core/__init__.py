"""The call core: every call's state and the changes to it, with no HTTP, WebRTC, SIP or
speech library (``make lint`` checks). A call's state changes in :mod:`.switch` (phases and
the changes allowed: :mod:`.call_state`); what a client or a media worker asks of a call
goes through :func:`.actions.apply_action`. Endpoints (ivrbot/endpoints) implement
:class:`.endpoints.Endpoint`; the wire API (ivrbot/wire) is one adapter on the core."""
