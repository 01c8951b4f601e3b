"""The browser of tests/web (headless Debian Chromium through Playwright) for the replay of
the recorded sequences against phone.js."""

from tests.web.conftest import browser, chromium, mic_wav  # noqa: F401
