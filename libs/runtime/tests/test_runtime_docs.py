"""Each service's /docs page is whole without the internet: Swagger UI's assets come from the
service itself, and the page still takes a bearer token through Authorize."""

from __future__ import annotations

import re
import shutil
from html.parser import HTMLParser
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import Depends
from playwright.async_api import Request, Route, async_playwright

from flowcase.devstack.browser import CHROMIUM, CHROMIUM_ARGS
from flowcase.devstack.in_process import served
from flowcase.runtime import create_app
from flowcase.runtime.auth import Authenticator, Principal, Role, mint_token, requires
from flowcase.runtime.settings import AuthSettings

SETTINGS = AuthSettings(dev_secret="s3cret-for-tests-only-0123456789abcdef")


def _app():
    auth = Authenticator(SETTINGS)
    app = create_app(title="t", description="d")

    @app.get("/whoami", summary="The caller")
    async def whoami(who: Principal = Depends(requires(auth, Role.AGENT))) -> dict[str, str]:
        return {"subject": who.subject}

    return app


class _Assets(HTMLParser):
    """The URLs a page loads: scripts, stylesheets, icons."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        url = named.get("src") if tag == "script" else named.get("href") if tag == "link" else None
        if url is not None:
            self.urls.append(url)


def _client(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def test_the_docs_page_loads_its_assets_from_the_service_without_a_token() -> None:
    async with _client(_app()) as client:
        page = await client.get("/docs")
        assert page.status_code == 200
        assets = _Assets()
        assets.feed(page.text)
        assert re.findall(r"https?://\S+", page.text) == []
        kinds = set()
        for url in assets.urls:
            assert not urlsplit(url).netloc, f"{url} is on another host"
            asset = await client.get(url)  # no Authorization header
            assert asset.status_code == 200, url
            kinds.add(asset.headers["content-type"].split(";")[0])
        assert {"text/css", "text/javascript"} <= kinds
        # The API itself still needs a token.
        assert (await client.get("/whoami")).status_code == 401


async def test_there_is_no_redoc_page_loading_from_a_cdn() -> None:
    async with _client(_app()) as client:
        assert (await client.get("/redoc")).status_code == 404


@pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="Chromium is not installed")
async def test_swagger_ui_renders_and_authorizes_with_every_other_host_blocked() -> None:
    app = _app()
    operations = sum(len(methods) for methods in app.openapi()["paths"].values())
    token = mint_token(SETTINGS, subject="agent-1", roles=[Role.AGENT])
    async with served(app) as base, async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context()
            elsewhere: list[str] = []
            sent_authorization: list[str | None] = []

            async def only_the_service(route: Route, request: Request) -> None:
                if not request.url.startswith(f"{base}/"):
                    elsewhere.append(request.url)
                    await route.abort("internetdisconnected")
                    return
                if urlsplit(request.url).path == "/whoami":
                    sent_authorization.append(await request.header_value("authorization"))
                await route.continue_()

            await context.route("**/*", only_the_service)
            page = await context.new_page()
            await page.goto(f"{base}/docs", wait_until="load")

            blocks = page.locator(".opblock")
            await blocks.first.wait_for(timeout=15_000)
            assert await blocks.count() == operations

            await page.locator(".auth-wrapper button.authorize").click()
            await page.locator(".modal-ux input").fill(token)
            await page.locator(".modal-ux button.authorize").click()
            await page.locator(".modal-ux button.btn-done").click()

            whoami = page.locator(".opblock", has=page.locator("[data-path='/whoami']"))
            await whoami.locator(".opblock-summary").click()
            await whoami.locator("button.try-out__btn").click()
            await whoami.locator("button.execute").click()
            status = whoami.locator(".live-responses-table tbody .response-col_status")
            await status.wait_for(timeout=15_000)
            assert (await status.inner_text()).strip() == "200"
            assert sent_authorization == [f"Bearer {token}"]
            assert elsewhere == []
        finally:
            await browser.close()
