"""The headless Chromium of the browser tests: Debian's build (deploy/local/install.sh installs
it; Playwright's own browser download is never used), with what would reach out switched off."""

from __future__ import annotations

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
