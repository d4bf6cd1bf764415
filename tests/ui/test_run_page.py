"""A run's page: overview (git diff, command, hardware), editable tags and notes, charts
(a 200,000-point series reduced by the server, zoom fetching detail), system metrics,
the console log, artifact previews and lineage."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from playwright.sync_api import expect

from tests.ui.conftest import UI
from tests.ui.data import LONG_POINTS, UiData

Open = Callable[..., UI]


def test_overview_tags_and_notes(site: str, open_ui: Open, ui_data: UiData) -> None:
    ui = open_ui(site)
    page = ui.page
    ui.goto(f"/runs/{ui_data.rich}")
    overview = page.locator("#panel-overview")
    expect(page.locator("#heading")).to_contain_text("rich")
    expect(overview).to_contain_text("python train.py --lr 0.01")
    expect(overview).to_contain_text("Test CPU")
    overview.get_by_text("Diff (").click()
    expect(overview.locator(".diffview .add", has_text="+LR = 0.01")).to_be_visible()
    expect(overview.locator(".diffview .del", has_text="-LR = 0.1")).to_be_visible()
    # tags: add one, remove one; notes: save
    page.locator("#tag-key").fill("reviewed")
    page.locator("#tag-value").fill("yes")
    page.get_by_role("button", name="Add tag").click()
    expect(overview.locator(".chip", has_text="reviewed=yes")).to_be_visible()
    page.get_by_role("button", name="Remove tag stage").click()
    expect(overview.locator(".chip", has_text="stage=dev")).to_have_count(0)
    page.locator("#notes").fill("checked by the UI test")
    page.get_by_role("button", name="Save notes").click()
    expect(overview.get_by_text("Saved.")).to_be_visible()
    run = httpx.get(f"{site}/api/v1/runs/{ui_data.rich}").json()
    assert run["tags"].get("reviewed") == "yes" and "stage" not in run["tags"]
    assert run["notes"] == "checked by the UI test"


def test_charts_logs_artifacts_lineage(site: str, open_ui: Open, ui_data: UiData) -> None:
    ui = open_ui(site)
    page = ui.page
    ui.goto(f"/runs/{ui_data.rich}")
    page.get_by_role("tab", name="Charts").click()
    charts = page.locator("#panel-charts .chart")
    expect(charts).to_have_count(4)  # acc, loss, lr, val/acc
    for i in range(4):
        expect(charts.nth(i)).to_have_attribute("data-state", "drawn")
    # controls: smoothing, log scale, relative time
    page.locator("#metrics-log").check()
    page.locator("#metrics-x").select_option("relative")
    expect(charts.first).to_have_attribute("data-state", "drawn")
    page.get_by_role("tab", name="System").click()
    expect(page.locator("#panel-system .chart[data-state=drawn]")).to_have_count(1)
    page.get_by_role("tab", name="Logs").click()
    expect(page.locator("#log")).to_contain_text("epoch 2: loss 0.5")
    page.get_by_role("tab", name="Artifacts").click()
    files = page.locator(".filelist")
    files.get_by_role("button", name="plot.png").click()
    expect(page.locator("#artifact-preview img")).to_have_attribute("alt", "plot.png")
    assert (
        page.locator("#artifact-preview img").evaluate("i => i.decode().then(() => i.naturalWidth)")
        == 4
    )
    files.get_by_role("button", name="metrics.csv").click()
    expect(page.locator("#artifact-preview table th").first).to_have_text("epoch")
    files.get_by_role("button", name="config.json").click()
    expect(page.locator("#artifact-preview pre")).to_contain_text('"layers": [')
    files.get_by_role("button", name="notes.txt").click()
    expect(page.locator("#artifact-preview pre")).to_contain_text("trained for 60 steps")
    files.get_by_role("button", name="weights.bin").click()
    expect(page.locator("#artifact-preview")).to_contain_text("binary file")
    page.get_by_role("tab", name="Lineage").click()
    graph = page.locator("#panel-lineage svg")
    expect(graph).to_contain_text("prepare")  # dataset's producer -> dataset -> run
    expect(graph).to_contain_text("images:v0")
    expect(graph).to_contain_text("vision-net@1")  # -> model artifact -> model version


def test_a_long_history_is_reduced_and_zoom_fetches_detail(
    site: str, open_ui: Open, ui_data: UiData
) -> None:
    ui = open_ui(site)
    page = ui.page
    ui.goto(f"/runs/{ui_data.long}#charts")
    chart = page.locator("#panel-charts .chart").first
    expect(chart).to_have_attribute("data-state", "drawn")
    expect(chart.locator(".note")).to_contain_text(f"{LONG_POINTS:,} points")
    shown = int(chart.get_attribute("data-points") or 0)
    assert 500 <= shown <= 1500, shown  # reduced on the server, not 200,000 points
    xs = "p => { const t = p.data[p.data.length - 1].x; return [t[0], t[t.length - 1], t.length]; }"
    first, last, _ = chart.locator(".plot").evaluate(xs)
    assert (first, last) == (0, LONG_POINTS - 1)
    # zoom into steps 1,000..1,500: the server sends that range at full resolution
    chart.locator(".plot").evaluate("p => Plotly.relayout(p, {'xaxis.range': [1000, 1500]})")
    page.wait_for_function(
        "p => { const t = p.data[p.data.length - 1].x; return t[0] >= 990 && t.length > 400; }",
        arg=chart.locator(".plot").element_handle(),
    )
    first, last, n = chart.locator(".plot").evaluate(xs)
    assert 990 <= first <= 1000 and 1500 <= last <= 1510 and n >= 500
    # double-click (autorange): back to the whole series
    chart.locator(".plot").evaluate("p => Plotly.relayout(p, {'xaxis.autorange': true})")
    page.wait_for_function(
        "p => p.data[p.data.length - 1].x[0] === 0", arg=chart.locator(".plot").element_handle()
    )


def test_a_running_run_is_live(site: str, open_ui: Open, ui_data: UiData) -> None:
    ui = open_ui(site)
    page = ui.page
    ui.goto(f"/runs/{ui_data.running}")
    expect(page.locator("#heading .status-running")).to_be_visible()
    page.get_by_role("tab", name="Logs").click()
    expect(page.locator("#log-status")).to_contain_text("Waiting for output")
    httpx.post(f"{site}/api/v1/runs/{ui_data.running}/logs", json={"text": "step 1 done\n"})
    expect(page.locator("#log")).to_contain_text("step 1 done", timeout=6000)
