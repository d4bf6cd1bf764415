"""The registry pages (promote a version from the UI, aliases, card, lineage to the
deployment alias) and the token login with ``--auth`` on."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import httpx
from playwright.sync_api import expect

from tests.ui.conftest import UI
from tests.ui.data import MODEL, PROJECT, build

Open = Callable[..., UI]


def test_models_and_promote_a_version(site: str, open_ui: Open) -> None:
    ui = open_ui(site)
    page = ui.page
    ui.goto("/models")
    expect(page.locator("#models table")).to_contain_text("champion → v1")
    page.get_by_role("link", name=MODEL, exact=True).click()
    page.wait_for_url(f"**/models/{MODEL}")
    versions = page.locator("#model table").first
    expect(versions).to_contain_text("staging")
    expect(page.locator("#model")).to_contain_text("stage.changed")  # the audit trail
    expect(page.locator("#model .lineage svg")).to_be_visible()
    page.get_by_role("link", name="v2", exact=True).first.click()
    page.wait_for_url(f"**/models/{MODEL}/versions/2")
    expect(page.locator("#version")).to_contain_text("Signature")
    page.locator("#promote-stage").select_option("production")
    page.locator("#promote-reason").fill("better on the holdout set")
    page.get_by_role("button", name="Promote").click()
    expect(page.locator("#heading .stage-production")).to_be_visible()
    expect(page.locator("#toasts")).to_contain_text("now in production")
    version = httpx.get(f"{site}/api/v1/models/{MODEL}/versions/2").json()
    assert version["stage"] == "production"
    events = httpx.get(f"{site}/api/v1/registry/events", params={"model": MODEL}).json()
    assert events[-1]["action"] == "stage.changed" and events[-1]["reason"] == (
        "better on the holdout set"
    )
    # lineage: dataset -> run -> model artifact -> this version -> its stage
    graph = page.locator("#version .lineage svg")
    expect(graph).to_contain_text("vision-net@2")
    expect(graph).to_contain_text("production")
    # an alias from the UI, and the model card rendered from Markdown
    page.locator("#alias-name").fill("candidate")
    page.get_by_role("button", name="Point at this version").click()
    expect(page.locator("#subheading")).to_contain_text("candidate")
    ui.goto(f"/models/{MODEL}/versions/1")
    expect(page.locator("#model-card h2")).to_have_text("Vision net")
    expect(page.locator("#model-card strong")).to_have_text("small")


def _bootstrap_token(tmp_path: Path) -> str:
    for log in tmp_path.glob("server-*.log"):
        found = re.search(r"mlt_[A-Za-z0-9_-]{20,}", log.read_text())
        if found:
            return found.group(0)
    raise AssertionError("no bootstrap token in the server's output")


def test_login_with_auth_on(serve: Callable[..., str], open_ui: Open, tmp_path: Path) -> None:
    store = tmp_path / "auth-store"
    build(store, big=0)  # its own store: the server makes a bootstrap admin in it
    url = serve(f"sqlite:///{store / 'mltrail.db'}", auth=True)
    token = _bootstrap_token(tmp_path)
    # pages carry no data: without a token they show nothing of the store
    for path in ("/", f"/projects/{PROJECT}", "/models", f"/models/{MODEL}", "/compare"):
        html = httpx.get(url + path).text
        assert "run-00" not in html and "vision-model" not in html, path
    assert httpx.get(f"{url}/api/v1/projects").status_code == 401
    ui = open_ui(url)
    page = ui.page
    ui.allow("status of 401")  # the first API call before signing in, the bad token
    ui.goto(f"/projects/{PROJECT}")
    page.wait_for_url("**/login?next=*")
    page.locator("#token").fill("mlt_not_a_real_token_000000000000")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#login-error")).to_contain_text("not valid")
    page.locator("#token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"**/projects/{PROJECT}")
    page.wait_for_selector("#grid[data-loaded]")
    expect(page.locator(".grid-row", has_text="rich-2")).to_have_count(1)
    expect(page.locator("#whoami")).to_be_visible()
    ui.goto("/models")
    expect(page.locator("#models table")).to_contain_text(MODEL)
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/login")
    ui.goto("/")
    page.wait_for_url("**/login?next=*")
