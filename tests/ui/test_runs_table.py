"""Projects and the runs table: virtual rows, search (and its errors), columns, sort,
group by, selection, keyboard, CSV export, themes, empty states and error pages."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect

from tests.ui.conftest import UI
from tests.ui.data import BIG, PROJECT, UiData

Open = Callable[..., UI]


SETTLED = "(g => g.dataset.loaded === g.dataset.generation)(document.querySelector('#grid'))"


def _settled(page: Page) -> None:
    """Wait until the table shows the result of the latest search."""
    page.wait_for_function(SETTLED)


def _table(ui: UI, project: str, query: str = "") -> None:
    ui.goto(f"/projects/{project}" + (f"?q={query}" if query else ""))
    ui.page.wait_for_selector("#grid[data-loaded]")


def test_projects_list_and_themes(site: str, open_ui: Open) -> None:
    ui = open_ui(site)
    ui.goto("/")
    table = ui.page.locator("#projects table")
    expect(table).to_contain_text(PROJECT)
    expect(table).to_contain_text("empty")
    # the theme toggle: system -> dark -> light, remembered across pages
    toggle = ui.page.locator("#theme-toggle")
    toggle.click()
    assert ui.page.evaluate("document.documentElement.dataset.theme") == "dark"
    ui.shot("dark")
    toggle.click()
    assert ui.page.evaluate("document.documentElement.dataset.theme") == "light"
    ui.page.reload()
    assert ui.page.evaluate("document.documentElement.dataset.theme") == "light"
    ui.page.get_by_role("link", name=PROJECT, exact=True).click()
    ui.page.wait_for_selector("#grid[data-loaded]")
    assert ui.page.evaluate("document.documentElement.dataset.theme") == "light"


def test_runs_table_rows_columns_sort_keyboard(site: str, open_ui: Open, ui_data: UiData) -> None:
    ui = open_ui(site)
    page = ui.page
    _table(ui, PROJECT)
    total = httpx.get(f"{site}/api/v1/runs:count", params={"project": PROJECT}).json()["count"]
    expect(page.locator("#run-count")).to_have_text(f"{total} runs")
    assert page.locator("#grid").get_attribute("aria-rowcount") == str(total + 1)
    expect(page.locator(".grid-row", has_text="rich-2")).to_have_count(1)
    expect(page.locator(".grid-row", has_text="live").locator(".status-running")).to_have_count(1)
    # default columns: attributes, then params and metrics of the first page
    headers = page.locator(".hcell").all_inner_texts()
    assert "Name" in headers and "lr" in headers and "loss" in headers
    # add a column from the picker, then one by name
    page.get_by_role("button", name="Columns").click()
    page.locator("#columns-body").get_by_label("tags.team").check()
    page.locator("#column-add").fill("max(metrics.acc)")
    page.get_by_role("button", name="Add", exact=True).click()
    page.get_by_role("button", name="Close").click()
    expect(page.locator(".hcell", has_text="team")).to_have_count(1)
    expect(page.locator(".hcell", has_text="max(acc)")).to_have_count(1)
    expect(page.locator(".grid-row", has_text="rich-2").locator(".cell")).not_to_have_count(0)
    # sort by a metric: descending, the first row is the largest
    page.locator(".hcell", has_text="loss").get_by_role("button").click()
    expect(page.locator(".hcell", has_text="loss")).to_have_attribute("aria-sort", "descending")
    _settled(page)
    best = httpx.get(f"{site}/api/v1/runs:table", params={
        "project": PROJECT, "order_by": "metrics.loss desc", "limit": 1,
    }).json()["rows"][0]["name"]  # fmt: skip
    expect(page.locator('.grid-row[aria-rowindex="2"]')).to_contain_text(best)
    # keyboard: focus the grid, move down, select with Space, open with Enter
    grid = page.locator("#grid")
    grid.focus()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Space")
    expect(page.locator("#selection-count")).to_have_text("1 selected")
    assert grid.get_attribute("aria-activedescendant", timeout=1000).startswith("cell-1-")
    page.keyboard.press("Enter")
    page.wait_for_url("**/runs/*")


def test_virtualised_rows_scroll(site: str, open_ui: Open) -> None:
    ui = open_ui(site)
    page = ui.page
    _table(ui, "big")
    expect(page.locator("#run-count")).to_have_text(f"{BIG:,} runs")
    in_dom = page.locator(".grid-body .grid-row").count()
    assert 10 < in_dom < 80, in_dom  # only the rows in view, not 1,000
    page.locator("#grid").evaluate("g => { g.scrollTop = g.scrollHeight; }")
    expect(page.locator(".grid-row", has_text="b-0000")).to_have_count(1)  # the oldest: last
    assert page.locator(".grid-body .grid-row").count() < 80


def test_search_and_a_bad_query(site: str, open_ui: Open) -> None:
    ui = open_ui(site)
    page = ui.page
    _table(ui, PROJECT)
    query = "params.optimizer = 'adam' and metrics.loss < 0.2"
    expected = httpx.get(f"{site}/api/v1/runs:count", params={"project": PROJECT, "query": query})
    n = expected.json()["count"]
    page.locator("#query").fill(query)
    page.locator("#query").press("Enter")
    _settled(page)
    expect(page.locator("#run-count")).to_contain_text(f"{n} ")
    assert "q=" in page.url  # the query is in the address, for sharing
    # a bad query: the parser's message, the caret under the position, the cursor there
    ui.allow("status of 400")
    bad = "params.optimizer = 'adam' and metrics.loss <"
    page.locator("#query").fill(bad)
    page.locator("#query").press("Enter")
    error = page.locator("#query-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text(f"at position {len(bad)}")
    caret = error.locator(".caret").inner_text()
    assert caret == " " * len(bad) + "^"
    assert page.locator("#query").get_attribute("aria-invalid") == "true"
    assert page.evaluate("document.querySelector('#query').selectionStart") == len(bad)
    ui.shot("query-error")
    # typing again clears the error; an empty query shows everything
    page.locator("#query").fill("")
    expect(error).to_be_hidden()


def test_group_select_compare_and_export(site: str, open_ui: Open, ui_data: UiData) -> None:
    ui = open_ui(site)
    page = ui.page
    _table(ui, PROJECT)
    # group by a param: one header row per value, each with its count
    page.locator("#group-by").select_option("params.optimizer")
    groups = page.locator(".grid-row.group")
    expect(groups.first).to_contain_text("params.optimizer = ")
    labels = groups.all_inner_texts()
    assert any("adam" in t for t in labels) and any("not set" in t for t in labels), labels
    page.locator("#group-by").select_option("")
    _settled(page)
    # CSV of every run matching the (empty) query
    with page.expect_download() as info:
        page.get_by_role("button", name="Export CSV").click()
    text = Path(info.value.path()).read_text(encoding="utf-8")
    lines = text.strip().splitlines()
    assert lines[0].startswith("id,name,status")
    total = httpx.get(f"{site}/api/v1/runs:count", params={"project": PROJECT}).json()["count"]
    assert len(lines) == total + 1
    # find two runs, select them and compare them
    page.locator("#query").fill("name in ('run-00', 'run-01')")
    page.locator("#query").press("Enter")
    expect(page.locator("#run-count")).to_contain_text("2 of")
    for name in ("run-00", "run-01"):
        page.get_by_label(f"Select {name}", exact=True).check()
    expect(page.locator("#compare-button")).to_have_text("Compare 2")
    page.locator("#compare-button").click()
    page.wait_for_url("**/compare?**")
    table = page.locator("#compare-table")
    expect(table.locator("thead")).to_contain_text("run-00")
    expect(table.locator("thead")).to_contain_text("run-01")
    assert table.locator("tr.diff").count() > 0  # their params differ, highlighted
    page.wait_for_selector(".chart[data-state=drawn]")
    page.locator("#parcoords").scroll_into_view_if_needed()  # drawn when in view
    page.wait_for_selector("#parcoords[data-state=drawn]")
    page.locator("#scatter").scroll_into_view_if_needed()
    page.wait_for_selector("#scatter[data-state=drawn]")
    page.locator("#only-diff").check()
    assert table.locator("tbody tr:visible").count() == table.locator("tr.diff").count()


def test_empty_states_and_error_pages(site: str, open_ui: Open) -> None:
    ui = open_ui(site)
    page = ui.page
    _table(ui, "empty")
    expect(page.locator(".grid-empty")).to_contain_text("No runs in this project yet")
    ui.allow("status of 404")
    response = ui.goto("/no/such/page")
    assert response is not None and response.status == 404
    expect(page.locator(".error-page")).to_contain_text("Page not found")
    ui.goto("/runs/no-such-run")
    expect(page.locator("#panel-overview")).to_contain_text("No such run")
    ui.goto("/models/no-such-model")
    expect(page.locator("#model")).to_contain_text("No such model")
    # the API keeps answering JSON
    r = httpx.get(f"{site}/api/v1/no-such-thing", headers={"Accept": "text/html"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
