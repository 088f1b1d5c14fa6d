"""The dashboard in a real headless Chromium (Debian's, driven by Playwright), over a projected
week of traffic; the screenshot lands in docs/governance-dashboard.png."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import async_playwright

from flowcase.devstack.browser import CHROMIUM, CHROMIUM_ARGS
from flowcase.devstack.dev_tokens import Tokens
from flowcase.devstack.in_process import served
from flowcase.events import Envelope
from flowcase.events.kafka import EventProducer
from flowcase.events.settings import KafkaSettings
from flowcase.runtime.auth import Role

PROCESS_SCREENSHOT = Path(__file__).resolve().parents[3] / "docs" / "governance-process.png"
SCREENSHOT = Path(__file__).resolve().parents[3] / "docs" / "governance-dashboard.png"


@pytest.fixture
async def dashboard_url(
    kafka_settings: KafkaSettings,
    database_url: str,
    start_governance: Callable[..., Awaitable[Any]],
    make_workload: Callable[..., list[Envelope]],
) -> AsyncIterator[str]:
    """The service's HTTP API on a free local port, after it projected the designed week."""
    running = await start_governance(kafka_settings, database_url)
    events = make_workload()
    async with EventProducer(kafka_settings, client_id="test-governance-dashboard") as producer:
        await producer.publish_all(events)
    await running.caught_up(len(events))
    async with served(running.service.app) as url:
        yield url


@pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="Chromium is not installed")
async def test_the_dashboard_renders_table_charts_recommendations_and_alerts(
    dashboard_url: str, tokens: Tokens
) -> None:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1400, "height": 900})
            # Offline: the page may fetch nothing but itself.
            outside: list[str] = []
            page.on(
                "request",
                lambda r: None if r.url.startswith(dashboard_url) else outside.append(r.url),
            )
            # Opened as an ops leader would: once with the token, which moves into a cookie.
            token = tokens.token(Role.OPS_LEADER, subject="ops-lead")
            first = await page.goto(f"{dashboard_url}/?token={token}", wait_until="load")
            assert first is not None
            assert first.url == f"{dashboard_url}/"
            response = await page.goto(f"{dashboard_url}/", wait_until="load")
            assert response is not None
            assert response.status == 200
            assert outside == []

            rows = page.locator("#processes tbody tr")
            assert await rows.count() == 4
            approaches = {
                await row.get_attribute("data-process"): await row.locator(
                    "[data-approach]"
                ).get_attribute("data-approach")
                for row in await rows.all()
            }
            assert approaches == {
                "access-request": "layered",
                "incident-triage": "case",
                "invoice-approval": "workflow",
                "vendor-onboarding": "layered",
            }
            reason = page.locator("#processes tr[data-process=incident-triage] .reason")
            assert "most requests need judgment" in await reason.inner_text()

            for chart in ("exception-rate", "overrides", "resolution-time"):
                charts = page.locator(f"svg[data-chart={chart}]")
                assert await charts.count() == 4
                box = await charts.first.bounding_box()
                assert box is not None
                assert box["width"] > 100
                assert box["height"] > 50
            rate_chart = page.locator(
                "section[data-process=incident-triage] svg[data-chart=exception-rate]"
            )
            assert await rate_chart.locator("line.threshold").count() == 1
            assert await rate_chart.locator("circle.point.over").count() == 7
            resolution = page.locator(
                "section[data-process=access-request] svg[data-chart=resolution-time]"
            )
            assert await resolution.locator("polyline.series").count() == 1
            assert await page.locator(".card table.steps").count() == 4

            drift = await page.locator("p.drift").all_inner_texts()
            assert len(drift) == 1
            assert drift[0].startswith("access-request")
            basis = page.locator("#processes tr[data-process=access-request] .drift-basis")
            assert (await basis.inner_text()).startswith("windows from ")
            assert await page.locator("#alerts li[data-kind=bottleneck]").count() >= 1

            SCREENSHOT.parent.mkdir(exist_ok=True)
            await page.screenshot(path=str(SCREENSHOT), full_page=True)

            # Each process type's row opens its page, with everything behind the row.
            await page.set_viewport_size({"width": 1400, "height": 900})
            await page.click("#processes tr[data-process=access-request] a")
            await page.wait_for_selector("#process")
            assert page.url.startswith(f"{dashboard_url}/processes/access-request?")
            assert "access-request" in await page.locator("#process").inner_text()
            assert await page.locator("#figures td.num").count() == 10
            assert await page.locator("svg[data-chart]").count() == 3
            assert "drifting" in await page.locator("#drift").inner_text()
            assert "windows from " in await page.locator("#drift").inner_text()
            past_sla = page.locator("#steps tr[data-step=approve] td.over")
            assert await past_sla.inner_text() == "33%"
            assert await page.locator("#cases tbody tr").count() > 0
            assert await page.locator("#alerts li[data-kind=bottleneck]").count() == 1
            await page.screenshot(path=str(PROCESS_SCREENSHOT), full_page=True)
            back = await page.goto(f"{dashboard_url}/processes/no-such-type", wait_until="load")
            assert back is not None
            assert back.status == 404
            assert "no-such-type" in await page.locator("#problem").inner_text()
            await page.goto(f"{dashboard_url}/", wait_until="load")

            # The page fits common widths: nothing of the overview is cut or scrolled sideways.
            for width in (1024, 1050, 1280):
                await page.set_viewport_size({"width": width, "height": 900})
                right = await page.evaluate(
                    "document.querySelector('#processes').getBoundingClientRect().right"
                )
                scrolled = await page.evaluate("document.documentElement.scrollWidth")
                assert right <= width, f"at {width} px the overview ends at {right} px"
                assert scrolled <= width, f"at {width} px the page is {scrolled} px wide"
            # Chart axes end on round figures: a share's top is at most 100 %.
            ticks = page.locator("svg[data-chart=exception-rate] text.tick")
            tops = await ticks.all_text_contents()
            shares = [t for t in tops if t.endswith("%")]
            assert shares
            assert all(t in {"25%", "50%", "100%", "10%", "20%"} for t in shares), shares
        finally:
            await browser.close()
