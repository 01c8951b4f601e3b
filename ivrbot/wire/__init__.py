"""The carrier wire API (aiohttp): one adapter on the call core (docs/spec/rtc-api.md)."""
