"""The call core: every call's state and the changes to it, with no HTTP, WebRTC, SIP or
speech library (``make lint`` checks). A call's state changes in one place,
:func:`.call_state.change` (phases and the changes allowed: :mod:`.call_state`), called by
the switch's modules (:mod:`.switch` is their facade). Every call a session has is a
:class:`.handle.CallHandle` (this switch's call, or one relayed to a media worker): what a
client, a media worker, the SIP connector or a bot asks of a call goes through it; a
direct call's actions are :func:`.actions.apply_action`. Endpoints (ivrbot/endpoints) implement
:class:`.endpoints.Endpoint`; the wire API (ivrbot/wire) is one adapter on the core."""
