"""For integrators: calls placed over HTTP (``POST /ivrbot/calls``) and signed webhooks of
calls' and campaigns' events (README: Starting calls over HTTP, and webhooks).

signing (the signature headers and how to verify them), delivery (the background sender:
ordered per call, retried with backoff), events (what bots and campaigns tell, as webhook
payloads), calls (placing a call and its state), routes (the HTTP API).
"""
