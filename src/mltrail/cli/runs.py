"""``mltrail runs``: list, show and compare runs."""

from __future__ import annotations

import math
from typing import Any

import typer
from rich.cells import cell_len
from rich.table import Table
from rich.text import Text

from mltrail.cli._common import (
    JsonOpt,
    UriOpt,
    cell,
    console,
    fmt_ago,
    fmt_duration,
    fmt_time,
    fmt_value,
    print_json,
    styled_status,
)
from mltrail.cli._repro import diff_sections, show_rows
from mltrail.entities import RunRecord
from mltrail.errors import NotFoundError, ValidationError

app = typer.Typer(help="List, inspect and compare runs.", no_args_is_help=True)


def _fit(header: str, values: list[str], lo: int | None, hi: int | None) -> int:
    """The width Rich gives a no-wrap column with these cells and bounds."""
    width = max(cell_len(v) for v in [header, *values])
    return min(max(width, lo or 0), hi or width)


def run_to_dict(r: RunRecord) -> dict[str, Any]:
    return {
        "id": r.id,
        "project": r.project,
        "name": r.name,
        "status": r.status,
        "exit_code": r.exit_code,
        "exit_reason": r.exit_reason,
        "created_at": r.created_at,
        "started_at": r.started_at,
        "ended_at": r.ended_at,
        "duration": r.duration,
        "user": r.user,
        "group": r.group,
        "job_type": r.job_type,
        "parent_id": r.parent_id,
        "notes": r.notes,
        "tags": r.tags,
        "config": r.config,
        "summary": r.summary,
        "metrics": {
            k: {
                "last": m.last,
                "last_step": m.last_step,
                "min": m.min,
                "max": m.max,
                "count": m.count,
            }
            for k, m in sorted(r.metrics.items())
        },
        "metadata": r.metadata,
    }


_WHERE = typer.Option(
    None,
    "--where",
    "-w",
    help="Filter: \"metrics.acc > 0.9 and (params.opt = 'adam' or tags.team = 'cv')\"",
)
_SORT = typer.Option(
    None, "--sort", "-s", help="Sort key, e.g. 'metrics.acc desc' (repeat for more keys)."
)
_COLUMNS = typer.Option(
    None, "--columns", "-c", help="Columns to show, e.g. name,status,metrics.acc,params.lr"
)


def column_value(r: RunRecord, col: str) -> Any:
    """A run's value for a column spec: attribute, metrics.X, params.X/config.X, tags.X."""
    ns, _, key = col.partition(".")
    if key and ns in ("metrics", "metric"):
        m = r.metrics.get(key)
        return r.summary_overrides.get(key, m.last if m is not None else None)
    if key and ns in ("params", "param", "config"):
        return r.config.get(key)
    if key and ns in ("tags", "tag"):
        return r.tags.get(key)
    attrs: dict[str, Any] = {
        "id": r.id, "name": r.name, "project": r.project, "status": r.status,
        "created": fmt_time(r.created_at), "duration": fmt_duration(r.duration),
        "user": r.user, "group": r.group, "job_type": r.job_type, "parent": r.parent_id,
        "notes": r.notes, "exit_code": r.exit_code,
    }  # fmt: skip
    if col not in attrs:
        raise ValidationError(
            f"unknown column {col!r}",
            hint="use an attribute (" + ", ".join(attrs) + ") or metrics.X, params.X, tags.X",
        )
    return attrs[col]


@app.command("ls")
def ls(
    project: str = typer.Option(None, "--project", "-p", help="Only runs of this project."),
    where: str = _WHERE,
    sort: list[str] = _SORT,
    columns: str = _COLUMNS,
    limit: int = typer.Option(50, "--limit", "-n", min=1, help="Show at most this many runs."),
    as_csv: bool = typer.Option(False, "--csv", help="Print CSV instead of a table."),
    as_json: bool = JsonOpt,
    uri: str = UriOpt,
) -> None:
    """List runs (newest first, or --sort), filtered with --where, with metric values."""
    from mltrail.client.client import Client

    runs = Client(uri).search_runs(project, where, order_by=sort or None, limit=limit)
    cols = [c.strip() for c in columns.split(",") if c.strip()] if columns else None
    if as_json:
        if cols:
            print_json([{c: column_value(r, c) for c in cols} for r in runs])
        else:
            print_json([run_to_dict(r) for r in runs])
        return
    if as_csv:
        import csv
        import sys

        cols = cols or ["id", "name", "project", "status", "created", "duration",
                        *sorted({f"metrics.{k}" for r in runs for k in r.summary})]  # fmt: skip
        out = csv.writer(sys.stdout)
        out.writerow(cols)
        for r in runs:
            out.writerow([fmt_value(column_value(r, c)) for c in cols])
        return
    if not runs:
        console.print("no runs match" if where else "no runs yet: start one with mltrail.init()")
        return
    if cols:
        table = Table(title=Text(where or "runs"), header_style="bold")
        for c in cols:
            table.add_column(Text(c), justify="right" if "." in c else "left")
        for r in runs:
            values = [column_value(r, c) for c in cols]
            table.add_row(*(
                styled_status(v) if c == "status" else cell(v)
                for c, v in zip(cols, values, strict=True)
            ))  # fmt: skip
        console.print(table)
        return
    fixed = ["id", "name", "status", "created", "duration"]
    if project is None:
        fixed.insert(2, "project")
    texts = [
        {
            "id": r.id,
            "name": r.name,
            "project": r.project,
            "status": r.status,
            "created": fmt_ago(r.created_at),
            "duration": fmt_duration(r.duration),
        }
        for r in runs
    ]
    # A column takes its widest cell (capped) plus padding and a border: 3 characters.
    min_widths = {"id": max(cell_len(r.id) for r in runs), "status": 8}
    max_widths = {"id": None}  # never truncate what users type back (run ids may be 64 long)
    used = 1 + sum(
        3 + _fit(col, [t[col] for t in texts], min_widths.get(col), max_widths.get(col, 24))
        for col in fixed
    )
    # Metric columns: the keys of the newest runs first, as many as the terminal fits.
    seen: dict[str, None] = {}
    for r in runs:
        for k in sorted(r.summary):
            seen.setdefault(k, None)
    metric_keys: list[str] = []
    for key in seen:
        used += 3 + _fit(key, [fmt_value(r.summary.get(key)) for r in runs], None, 12)
        if used > console.width:
            break
        metric_keys.append(key)
    table = Table(title=Text(f"runs in {project}" if project else "runs"), header_style="bold")
    for col in fixed:
        table.add_column(
            col,
            no_wrap=True,
            overflow="fold" if col == "id" else "ellipsis",
            min_width=min_widths.get(col),
            max_width=max_widths.get(col, 24),
        )
    for key in metric_keys:
        table.add_column(
            Text(key), justify="right", no_wrap=True, overflow="ellipsis", max_width=12
        )
    for r, t in zip(runs, texts, strict=True):
        cells = [styled_status(r.status) if col == "status" else cell(t[col]) for col in fixed]
        table.add_row(*cells, *(cell(r.summary.get(k)) for k in metric_keys))
    console.print(table)


@app.command("show")
def show(
    run_id: str = typer.Argument(..., help="The run's id."),
    as_json: bool = JsonOpt,
    uri: str = UriOpt,
) -> None:
    """Everything about one run: status, config, metrics, tags, notes."""
    from mltrail.client.client import Client

    r = Client(uri).get_run(run_id)
    if as_json:
        print_json(run_to_dict(r))
        return
    info = Table.grid(padding=(0, 2))
    info.add_column(style="bold")
    info.add_column()
    rows: list[tuple[str, str | Text]] = [
        ("id", cell(r.id)),
        ("name", cell(r.name)),
        ("project", cell(r.project)),
        ("status", styled_status(r.status)),
        ("exit", cell(f"{fmt_value(r.exit_code)} {r.exit_reason or ''}".strip())),
        ("started", fmt_time(r.started_at)),
        ("ended", fmt_time(r.ended_at)),
        ("duration", fmt_duration(r.duration)),
        ("user", cell(r.user)),
        ("group", cell(r.group)),
        ("job type", cell(r.job_type)),
        ("parent", cell(r.parent_id)),
        ("tags", cell(", ".join(f"{k}={v}" if v else k for k, v in r.tags.items()) or "-")),
        ("notes", cell(r.notes or "-")),
    ]
    last = {k: m.last for k, m in r.metrics.items()}
    rows += [(k, cell(v)) for k, v in show_rows(r.metadata, last)]
    for k, v in rows:
        info.add_row(k, v)
    console.print(info)
    if r.config:
        cfg = Table(title="config", header_style="bold")
        cfg.add_column("param")
        cfg.add_column("value")
        for k, v in r.config.items():
            cfg.add_row(cell(k), cell(v))
        console.print(cfg)
    if r.metrics or r.summary_overrides:
        met = Table(title="metrics", header_style="bold")
        for col in ("key", "last", "step", "min", "max", "count"):
            met.add_column(col, justify="left" if col == "key" else "right")
        for k, m in sorted(r.metrics.items()):
            met.add_row(
                cell(k),
                cell(m.last),
                str(m.last_step),
                cell(m.min),
                cell(m.max),
                str(m.count),
            )
        for k, v in r.summary_overrides.items():
            met.add_row(cell(f"{k} (summary)"), cell(v), "", "", "", "")
        console.print(met)


@app.command("diff")
def diff(
    run_a: str = typer.Argument(..., help="First run id."),
    run_b: str = typer.Argument(..., help="Second run id."),
    show_all: bool = typer.Option(False, "--all", help="Also show what is the same."),
    as_json: bool = JsonOpt,
    uri: str = UriOpt,
) -> None:
    """What differs between two runs: config, summary metrics, tags, status."""
    from mltrail.client.client import Client

    client = Client(uri)
    a, b = client.get_run(run_a), client.get_run(run_b)
    rows: list[tuple[str, str, Any, Any]] = []
    sections: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
        ("run", _attrs(a), _attrs(b)),
        ("config", a.config, b.config),
        ("summary", a.summary, b.summary),
        ("tags", a.tags, b.tags),
    ]
    for (name, da), (_, db) in zip(
        diff_sections(a.metadata), diff_sections(b.metadata), strict=True
    ):
        sections.append((name, da, db))
    for section, da, db in sections:
        for key in sorted(set(da) | set(db)):
            va, vb = da.get(key), db.get(key)
            if show_all or not _same(va, vb):
                rows.append((section, key, va, vb))
    if as_json:
        print_json(
            [{"section": s, "key": k, "a": va, "b": vb} for s, k, va, vb in rows],
        )
        return
    table = Table(title=Text(f"{a.name} ({a.id})  vs  {b.name} ({b.id})"), header_style="bold")
    for col in ("section", "key", "a", "b"):
        table.add_column(col)
    for s, k, va, vb in rows:
        shown_a, shown_b = fmt_value(va), fmt_value(vb)
        if shown_a == shown_b and not _same(va, vb):  # 0.1 vs 0.10000001, 1 vs "1"
            shown_a, shown_b = repr(va), repr(vb)
        table.add_row(s, cell(k), cell(shown_a), cell(shown_b))
    if not rows:
        console.print("no differences")
    else:
        console.print(table)


def _same(a: Any, b: Any) -> bool:
    """Equal for a diff: NaN equals NaN, 1 equals 1.0, but 1 is not True or "1"."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    return type(a) is type(b) and bool(a == b)


def _attrs(r: RunRecord) -> dict[str, Any]:
    return {
        "project": r.project,
        "status": r.status,
        "user": r.user,
        "group": r.group,
        "job_type": r.job_type,
    }


@app.command("logs")
def logs(
    run_id: str = typer.Argument(..., help="The run's id."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing while it runs."),
    uri: str = UriOpt,
) -> None:
    """Print the console output (stdout and stderr) a run captured."""
    import sys
    import time

    from mltrail.client.client import Client

    client = Client(uri)
    client.get_run(run_id)  # a clear error for an unknown id
    after = 0
    while True:
        for seq, text in client.store.read_logs(run_id, after=after):
            sys.stdout.write(text)
            after = seq
        sys.stdout.flush()
        if not follow or client.get_run(run_id).status != "running":
            return
        time.sleep(1.0)


_RUN_IDS = typer.Argument(..., help="Two or more run ids.")


@app.command("compare")
def compare(
    run_ids: list[str] = _RUN_IDS,
    show_all: bool = typer.Option(False, "--all", help="Also rows where every run agrees."),
    as_json: bool = JsonOpt,
    uri: str = UriOpt,
) -> None:
    """Params and final metrics of several runs side by side; differences highlighted."""
    from mltrail.client.client import Client

    if len(run_ids) < 2:
        raise ValidationError("compare needs at least two run ids")
    client = Client(uri)
    runs = [client.get_run(i) for i in run_ids]
    keys = [("params", k) for k in sorted({k for r in runs for k in r.config})]
    keys += [("metrics", k) for k in sorted({k for r in runs for k in r.summary})]
    rows = []
    for ns, key in keys:
        values = [(r.config if ns == "params" else r.summary).get(key) for r in runs]
        differs = len({fmt_value(v) for v in values}) > 1
        if show_all or differs:
            rows.append((f"{ns}.{key}", values, differs))
    if as_json:
        print_json([
            {"key": k, "values": dict(zip(run_ids, v, strict=True)), "differs": d}
            for k, v, d in rows
        ])  # fmt: skip
        return
    table = Table(header_style="bold")
    table.add_column("key")
    for r in runs:
        table.add_column(Text(f"{r.name}\n{r.id}"), justify="right")
    for key, values, differs in rows:
        style = "bold yellow" if differs else ""
        table.add_row(Text(key, style=style), *(Text(fmt_value(v), style=style) for v in values))
    console.print(table if rows else "no differences")


@app.command("best")
def best(
    metric: str = typer.Option(..., "--metric", "-m", help="The metric to rank by."),
    maximize: bool = typer.Option(True, "--max/--min", help="Highest (default) or lowest."),
    project: str = typer.Option(None, "--project", "-p", help="Only runs of this project."),
    where: str = _WHERE,
    as_json: bool = JsonOpt,
    uri: str = UriOpt,
) -> None:
    """The run with the best value of a metric (optionally among runs matching --where)."""
    from mltrail.client.client import Client
    from mltrail.query import to_text
    from mltrail.query.ast import Metric

    field = to_text(Metric(metric))
    cond = f"{field} is not null" + (f" and ({where})" if where else "")
    order = f"{field} {'desc' if maximize else 'asc'}"
    runs = Client(uri).search_runs(project, cond, order_by=[order], limit=1)
    if not runs:
        raise NotFoundError(
            f"no run has a metric {metric!r}" + (" matching --where" if where else "")
        )
    r = runs[0]
    if as_json:
        print_json(run_to_dict(r))
        return
    console.print(Text(f"{r.name} ({r.id}): {metric} = {fmt_value(r.summary.get(metric))}"))
