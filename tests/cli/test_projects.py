"""``mltrail projects ls``."""

from __future__ import annotations

import time

from mltrail.cli._common import fmt_time
from tests.cli.conftest import Invoke, MakeRun
from tests.cli.helpers import header, loads, ok, rows


def test_projects_ls(make_run: MakeRun, cli: Invoke) -> None:
    assert loads(ok(cli("projects", "ls", "--json"))) == []
    assert rows(ok(cli("projects", "ls"))) == []
    before = time.time()
    for project in ["vision", "nlp", "vision"]:
        with make_run(project=project):
            pass
    data = loads(ok(cli("projects", "ls", "--json")))
    assert [(p["name"], p["runs"]) for p in data] == [("nlp", 1), ("vision", 2)]  # by name
    assert all(before - 1 <= p["created_at"] <= time.time() for p in data)
    assert set(data[0]) == {"name", "created_at", "runs"}
    out = ok(cli("projects", "ls"))
    assert header(out) == ["name", "runs", "created"]
    assert [r[:2] for r in rows(out)] == [["nlp", "1"], ["vision", "2"]]
    assert [r[2] for r in rows(out)] == [fmt_time(p["created_at"]) for p in data]
