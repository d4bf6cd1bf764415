"""runs ls --where/--sort/--columns/--csv, runs compare, runs best."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable

import mltrail
from tests.cli.helpers import loads, ok, rows

MakeRun = Callable[..., mltrail.Run]


def _three(make_run: MakeRun) -> list[mltrail.Run]:
    runs = []
    for name, lr, opt, acc in [("a", 0.1, "adam", 0.91), ("b", 0.01, "sgd", 0.95),
                               ("c", 0.001, "adam", 0.80)]:  # fmt: skip
        run = make_run(name=name, config={"lr": lr, "opt": opt}, tags={"team": "cv"})
        run.log({"acc": acc, "loss": 1 - acc})
        run.finish()
        runs.append(run)
    return runs


def test_ls_where_sort_columns(cli: Callable[..., object], make_run: MakeRun) -> None:
    _three(make_run)
    where = "metrics.acc > 0.85 and params.opt in ('adam', 'sgd')"
    out = ok(cli("runs", "ls", "--where", where, "--sort", "metrics.acc desc",
                 "--columns", "name,metrics.acc,params.opt"))  # fmt: skip
    body = [r for r in rows(out) if r and r[0] in ("a", "b", "c")]
    assert [r[0] for r in body] == ["b", "a"]
    data = loads(ok(cli("runs", "ls", "--sort", "params.lr", "--columns", "name,params.lr",
                        "--json")))  # fmt: skip
    assert data == [{"name": "c", "params.lr": 0.001}, {"name": "b", "params.lr": 0.01},
                    {"name": "a", "params.lr": 0.1}]  # fmt: skip
    text = ok(cli("runs", "ls", "--where", "params.opt = 'adam'", "--csv", "--columns",
                  "name,metrics.acc"))  # fmt: skip
    assert list(csv.reader(io.StringIO(text))) == [["name", "metrics.acc"], ["c", "0.8"],
                                                  ["a", "0.91"]]  # fmt: skip


def test_bad_input_exit_codes(
    run_main: Callable[..., tuple[int, str, str]], make_run: MakeRun, store_uri: str
) -> None:
    a, _, _ = _three(make_run)
    code, _, err = run_main("runs", "ls", "--where", "metrics.acc >", "--tracking-uri", store_uri)
    assert code == 2 and "expected a value" in err and "^" in err
    code, _, err = run_main("runs", "ls", "--columns", "nme", "--tracking-uri", store_uri)
    assert code == 2 and "unknown column" in err
    code, _, err = run_main("runs", "best", "--metric", "nope", "--tracking-uri", store_uri)
    assert code == 4 and "no run has a metric 'nope'" in err
    code, _, err = run_main("runs", "compare", a.id, "--tracking-uri", store_uri)
    assert code == 2 and "at least two" in err


def test_compare_and_best(cli: Callable[..., object], make_run: MakeRun) -> None:
    a, b, c = _three(make_run)
    data = loads(ok(cli("runs", "compare", a.id, b.id, c.id, "--json")))
    keys = {row["key"]: row for row in data}
    assert keys["params.opt"]["values"] == {a.id: "adam", b.id: "sgd", c.id: "adam"}
    assert "params.team" not in keys and all(row["differs"] for row in data)
    assert loads(ok(cli("runs", "best", "--metric", "acc", "--json")))["id"] == b.id
    assert loads(ok(cli("runs", "best", "--metric", "loss", "--min", "--json")))["id"] == b.id
    best_adam = loads(ok(cli("runs", "best", "-m", "acc", "--where", "params.opt = 'adam'",
                             "--json")))  # fmt: skip
    assert best_adam["id"] == a.id
