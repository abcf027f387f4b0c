"""Helpers for looking at the inspector's page."""

from __future__ import annotations

import os
from pathlib import Path

from playwright.sync_api import Locator, Page

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "out" / "test-artifacts" / "inspector"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    *(["--no-sandbox"] if os.geteuid() == 0 else []),
]


def node(page: Page, state: str) -> Locator:
    return page.locator(f'svg.workflow g.node[data-state="{state}"]')


def fill_of(page: Page, state: str) -> str:
    return node(page, state).locator("rect").evaluate("rect => getComputedStyle(rect).fill")
