"""The sweeps and pipelines pages, on a store of their own: a real grid sweep (three of
its four points run in-process by ``mltrail.agent``) and a real two-stage pipeline
(``mltrail.pipelines.repro``), served by a real ``mltrail server`` (and one with
``--auth``). The shared UI store has neither, so it shows the empty states."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml
from playwright.sync_api import expect

import mltrail
from mltrail.pipelines import load_pipeline, repro
from tests.server.test_routes_access import launch
from tests.ui.conftest import UI
from tests.ui.data import LEAN, _env

Open = Callable[..., UI]
PROJECT = "tuning"
GRID = {
    "method": "grid",
    "name": "lr-grid",
    "metric": {"name": "acc", "goal": "maximize"},
    "parameters": {"lr": {"values": [0.1, 0.01, 0.001, 0.0001]}, "opt": {"value": "adam"}},
}


@dataclass(frozen=True)
class Store:
    uri: str
    objects: str
    sweep: str
    stages: dict[str, str]  # stage name -> run id


def _train() -> None:
    run = mltrail.init()
    run.log({"acc": 1.0 - abs(run.config["lr"] - 0.01) * 5})
    run.finish()


def _pipeline(root: Path) -> None:
    root.mkdir()
    (root / "raw.txt").write_text("1\n2\n")
    stages = {
        "prepare": {"cmd": "cp raw.txt clean.txt", "deps": ["raw.txt"], "outs": ["clean.txt"]},
        "train": {"cmd": "wc -l < clean.txt > m.txt", "deps": ["clean.txt"], "outs": ["m.txt"]},
    }  # fmt: skip
    (root / "mltrail.yaml").write_text(yaml.safe_dump({"stages": stages}))


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    base = tmp_path_factory.mktemp("ui-sweeps")
    uri = f"sqlite:///{base / 'mltrail.db'}"
    with _env({**LEAN, "MLTRAIL_CAPTURE_ENV": "0", "MLTRAIL_CAPTURE_HARDWARE": "0"}):
        sweep_id = mltrail.sweep(GRID, project=PROJECT, uri=uri)
        trials = mltrail.agent(sweep_id, function=_train, count=3, uri=uri)
        assert [t.status for t in trials] == ["finished"] * 3
        _pipeline(base / "pipe")
        result = repro(load_pipeline(base / "pipe"), project="pipe", uri=uri)
    runs = mltrail.Client(uri).search_runs("pipe", "job_type = 'pipeline-stage'")
    assert sorted(r.name for r in runs) == ["prepare", "train"], result
    return Store(uri, str(base / "objects"), sweep_id, {str(r.name): r.id for r in runs})


@pytest.fixture(scope="module")
def server(store: Store, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("ui-sweeps-server") / "server.log"
    with launch(store.uri, store.objects, log, auth=False) as url:
        yield url


def test_sweeps_list_and_sweep_page(server: str, store: Store, open_ui: Open) -> None:
    ui = open_ui(server)
    page = ui.page
    ui.goto("/sweeps")
    row = page.locator("#sweeps tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("lr-grid")
    expect(row).to_contain_text("acc (maximize)")
    expect(row).to_contain_text("3 done · 0 running · 0 failed")
    expect(row.locator("td").nth(6)).to_have_text("1")  # best acc: lr=0.01
    page.get_by_role("link", name="lr-grid").click()
    page.wait_for_url(f"**/sweeps/{store.sweep}")
    page.wait_for_selector("#sweep[data-loaded]")
    expect(page.locator("#heading")).to_have_text("lr-grid")
    trials = page.locator("#sweep-trials tbody tr")
    expect(trials).to_have_count(3)
    expect(trials.first).to_have_class(re.compile("best"))
    expect(trials.first.locator("td").nth(5)).to_have_text("0.01")  # ranked: best first
    run_id = httpx.get(f"{server}/api/v1/sweeps/{store.sweep}/report").json()["best"]["run_id"]
    best_link = trials.first.get_by_role("link", name=run_id)
    expect(best_link).to_have_attribute("href", f"/runs/{run_id}")
    expect(page.locator("#sweep-best")).to_contain_text("acc = 1")
    expect(page.locator("#sweep-importance tbody tr")).to_have_count(1)  # lr (opt is fixed)
    expect(page.locator("#sweep-importance")).to_contain_text("lr")
    expect(page.locator("#sweep-parcoords")).to_have_attribute("data-state", "drawn")
    expect(page.locator("#sweep-progress")).to_have_attribute("data-state", "drawn")
    expect(page.locator("#sweep-config")).to_contain_text("method: grid")
    page.get_by_role("button", name="JSON").click()
    expect(page.locator("#sweep-config")).to_contain_text('"method": "grid"')
    # stop, resume (through the API), then the last trial appears without a reload
    expect(page.locator("#sweep-live")).to_contain_text("Live")
    page.get_by_role("button", name="Stop sweep").click()
    expect(page.get_by_role("button", name="Resume sweep")).to_be_visible()
    assert httpx.get(f"{server}/api/v1/sweeps/{store.sweep}").json()["state"] == "stopped"
    page.get_by_role("button", name="Resume sweep").click()
    expect(page.get_by_role("button", name="Stop sweep")).to_be_visible()
    with _env(LEAN):
        mltrail.agent(store.sweep, function=_train, uri=store.uri)  # the last point, then done
    expect(trials).to_have_count(4)
    expect(page.locator("#sweep-summary")).to_contain_text("finished")
    expect(page.locator("#sweep-state")).to_be_hidden()
    page.locator("#theme-toggle").click()  # the other theme: charts redrawn in place
    expect(page.locator("#sweep-progress .scatterlayer .point")).to_have_count(4)
    expect(page.locator("#sweep-parcoords svg.main-svg").first).to_be_visible()


def test_pipelines_page(server: str, store: Store, open_ui: Open) -> None:
    ui = open_ui(server)
    page = ui.page
    ui.goto("/pipelines?project=pipe")
    page.wait_for_selector("#pipelines[data-loaded]")
    rows = page.locator("#pipelines tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("prepare")  # in the order they ran
    expect(rows.nth(1)).to_contain_text("train")
    expect(rows.first).to_contain_text("finished")
    # the latest stage's lineage: its upstream stage and the out it used
    lineage = page.locator("#pipeline-lineage svg")
    expect(page.locator("#pipeline-lineage")).to_have_attribute("data-run", store.stages["train"])
    expect(lineage).to_contain_text("prepare")
    expect(lineage).to_contain_text("prepare.clean.txt")
    page.get_by_role("button", name="Show the lineage of prepare").click()
    expect(page.locator("#pipeline-lineage")).to_have_attribute("data-run", store.stages["prepare"])
    expect(lineage).to_contain_text("train")  # downstream now
    assert f"run={store.stages['prepare']}" in page.url
    link = rows.first.get_by_role("link", name=store.stages["prepare"])
    expect(link).to_have_attribute("href", f"/runs/{store.stages['prepare']}")


def test_empty_states(site: str, open_ui: Open) -> None:
    ui = open_ui(site)
    page = ui.page
    ui.goto("/sweeps")
    expect(page.locator("#sweeps .empty")).to_contain_text("No sweeps yet")
    expect(page.locator("#sweeps .empty pre")).to_contain_text("mltrail sweep config.yaml")
    expect(page.get_by_role("link", name="Sweeps")).to_have_attribute("aria-current", "page")
    ui.goto("/pipelines")
    expect(page.locator("#pipelines .empty")).to_contain_text("No pipeline runs yet")
    ui.allow("status of 404")
    ui.goto("/sweeps/nosuchsweep0000000000000000000000")
    expect(page.locator("#sweep .empty")).to_contain_text("No such sweep")


def test_with_auth(store: Store, open_ui: Open, tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    with launch(store.uri, store.objects, log, auth=True) as url:
        found = re.search(r"mlt_[A-Za-z0-9_-]{20,}", log.read_text())
        assert found, log.read_text()
        assert httpx.get(f"{url}/api/v1/sweeps/{store.sweep}/report").status_code == 401
        assert "lr-grid" not in httpx.get(f"{url}/sweeps/{store.sweep}").text
        ui = open_ui(url)
        ui.allow("status of 401")
        page = ui.page
        ui.goto("/pipelines")
        page.wait_for_url("**/login?next=*")
        page.locator("#token").fill(found.group(0))
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url("**/pipelines")
        page.wait_for_selector("#pipelines[data-loaded]")
        expect(page.locator("#pipelines tbody tr")).to_have_count(2)
        ui.goto(f"/sweeps/{store.sweep}")
        page.wait_for_selector("#sweep[data-loaded]")
        expect(page.locator("#heading")).to_have_text("lr-grid")
        expect(page.locator("#sweep-parcoords")).to_have_attribute("data-state", "drawn")
