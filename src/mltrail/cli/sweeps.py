"""``mltrail sweep CONFIG`` and ``mltrail sweep ls|show|stop|resume``; ``mltrail agent ID``.

``mltrail sweep sweep.yaml`` is ``mltrail sweep create sweep.yaml``: W&B's
``wandb sweep`` habit, kept beside the sub-commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from mltrail.cli._common import (
    JsonOpt,
    UriOpt,
    cell,
    console,
    fmt_duration,
    fmt_time,
    print_json,
    styled_status,
)
from mltrail.entities import Sweep, Trial
from mltrail.wire import to_wire

__all__ = ["agent", "app"]


class _SweepGroup(TyperGroup):
    """A word that is not a sub-command is the config file of ``create``."""

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:  # (typer vendors click)
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["create", *args]
        return super().resolve_command(ctx, args)


app = typer.Typer(
    cls=_SweepGroup,
    help="Create hyperparameter sweeps (W&B's config format) and follow them: "
    "mltrail sweep CONFIG.yaml, then mltrail agent ID.",
    no_args_is_help=True,
)

_SWEEP_ID = typer.Argument(..., help="The sweep's id.")
_STATE_STYLE = {"running": "cyan", "finished": "green", "stopped": "yellow", "canceled": "yellow"}
_TRIAL_STYLE = {"pending": "white", "stopped": "yellow"}


def _state(state: str) -> str:
    return f"[{_STATE_STYLE.get(state, 'white')}]{state}[/]"


def _status(status: str) -> str:
    style = _TRIAL_STYLE.get(status)
    return f"[{style}]{status}[/]" if style else styled_status(status)


def _agent_command(sweep: Sweep, uri: str | None) -> str:
    from mltrail.store.sql.engine import redact

    if sweep.config.get("program") is None:
        return f"mltrail.agent({sweep.id!r}, function=train)  # from Python: no program"
    return f"mltrail agent {sweep.id}" + (f" --tracking-uri {redact(uri)}" if uri else "")


def _goal(sweep: Sweep) -> str:
    return f"{sweep.metric} ({sweep.goal})" if sweep.metric else "-"


def _total(sweep: Sweep) -> int:
    return sum(sweep.counts.values())


@app.command("create")
def create(
    config: str = typer.Argument(..., help="The sweep configuration: a YAML or JSON file."),
    project: str = typer.Option(None, "--project", "-p", help="Project of its runs."),
    name: str = typer.Option(None, "--name", help="A name for the sweep (default: its config's)."),
    as_json: bool = JsonOpt,
    uri: str = UriOpt,
) -> None:
    """Create a sweep; prints its id and the command that starts agents."""
    from mltrail.sweeps import get_sweep, sweep

    sweep_id = sweep(Path(config), project, name=name, uri=uri)
    created = get_sweep(sweep_id, uri=uri)
    command = _agent_command(created, uri)
    if as_json:
        print_json({**to_wire(created), "agent_command": command})
        return
    params = len(created.config.get("parameters") or {})
    console.print(
        Text.assemble(
            "created sweep ",
            (sweep_id, "bold"),
            f" ({created.method}, {params} parameters) in project {created.project}",
        )
    )
    console.print(Text.assemble("start agents with: ", (command, "bold")))


@app.command("ls")
def ls(
    project: str = typer.Option(None, "--project", "-p", help="Only sweeps of this project."),
    as_json: bool = JsonOpt,
    uri: str = UriOpt,
) -> None:
    """List sweeps, newest first, with their state and best value."""
    from mltrail.sweeps import list_sweeps, list_trials
    from mltrail.sweeps.report import best_trial

    sweeps = list_sweeps(project, uri=uri)
    best = {s.id: best_trial(s, list_trials(s.id, uri=uri)) for s in sweeps}
    if as_json:
        print_json([{**to_wire(s), "best": to_wire(best[s.id])} for s in sweeps])
        return
    if not sweeps:
        console.print("no sweeps yet: create one with mltrail sweep CONFIG.yaml")
        return
    table = Table(title=Text(f"sweeps in {project}" if project else "sweeps"), header_style="bold")
    for col in ("id", "name", "project", "method", "metric", "state", "trials", "best", "created"):
        table.add_column(col, justify="right" if col in ("trials", "best") else "left")
    for s in sweeps:
        top = best[s.id]
        done = s.counts.get("finished", 0)
        table.add_row(
            cell(s.id),
            cell(s.name),
            cell(s.project),
            s.method,
            cell(_goal(s)),
            _state(s.state),
            f"{done}/{_total(s)}",
            cell(None if top is None else top.value),
            fmt_time(s.created_at),
        )
    console.print(table)


def _flat(trial: Trial) -> dict[str, Any]:
    from mltrail.client.values import flatten

    return flatten(trial.params, ".", what="config")


@app.command("show")
def show(
    sweep_id: str = _SWEEP_ID,
    limit: int = typer.Option(20, "--limit", "-n", min=1, help="Show at most this many trials."),
    as_json: bool = JsonOpt,
    uri: str = UriOpt,
) -> None:
    """A sweep: its trials ranked by the metric, the best configuration, and how much
    each parameter matters."""
    from mltrail.sweeps import get_sweep, list_trials
    from mltrail.sweeps.config import parse_config
    from mltrail.sweeps.report import best_trial, importance, ranked, summary

    sweep = get_sweep(sweep_id, uri=uri)
    trials = ranked(sweep, list_trials(sweep_id, uri=uri))
    if as_json:
        print_json({**summary(sweep, trials), "agent_command": _agent_command(sweep, uri)})
        return
    best = best_trial(sweep, trials)
    weights = importance(sweep, trials)
    info = Table.grid(padding=(0, 2))
    info.add_column(style="bold")
    info.add_column()
    counts = ", ".join(f"{n} {k}" for k, n in sweep.counts.items()) or "none yet"
    for key, value in (
        ("id", cell(sweep.id)),
        ("name", cell(sweep.name)),
        ("project", cell(sweep.project)),
        ("method", cell(sweep.method)),
        ("metric", cell(_goal(sweep))),
        ("state", _state(sweep.state)),
        ("trials", cell(f"{_total(sweep)}: {counts}")),
        ("agents", cell(_agent_command(sweep, uri))),
    ):
        info.add_row(key, value)
    console.print(info)
    searched = [p.path for p in parse_config(sweep.config).searched]
    table = Table(
        title=Text(f"trials ranked by {_goal(sweep)}" if sweep.metric else "trials"),
        header_style="bold",
    )
    for col in ("rank", "#", "run", "status", "value", *searched, "duration"):
        right = col in ("rank", "#", "value", "duration") or col in searched
        table.add_column(Text(col), justify="right" if right else "left")
    for i, t in enumerate(trials[:limit]):
        flat = _flat(t)
        duration = (
            None if t.started_at is None else (t.ended_at or t.heartbeat_at or 0) - t.started_at
        )
        table.add_row(
            str(i + 1) if t.value is not None else "-",
            str(t.number),
            cell(t.run_id),
            _status(t.status),
            cell(t.value),
            *(cell(flat.get(p)) for p in searched),
            fmt_duration(duration),
        )
    console.print(table)
    if len(trials) > limit:
        console.print(f"({len(trials) - limit} more: --limit {len(trials)})")
    if best is not None:
        cfg = Table(
            title=Text(f"best configuration: trial {best.number}, run {best.run_id}"),
            header_style="bold",
        )
        cfg.add_column("param")
        cfg.add_column("value")
        for k, v in _flat(best).items():
            cfg.add_row(cell(k), cell(v))
        console.print(cfg)
    if weights:
        imp = Table(
            title="parameter importance (rank correlation with the metric)", header_style="bold"
        )
        for col in ("param", "importance", "correlation", ""):
            imp.add_column(col, justify="left" if col in ("param", "") else "right")
        for w in weights:
            bar = "█" * round(w.importance * 20)
            imp.add_row(
                cell(w.param),
                f"{w.importance:.2f}",
                "-" if w.correlation is None else f"{w.correlation:+.2f}",
                bar,
            )
        console.print(imp)


@app.command("stop")
def stop(
    sweep_id: str = _SWEEP_ID,
    cancel: bool = typer.Option(False, "--cancel", help="Stop the running trials too."),
    as_json: bool = JsonOpt,
    uri: str = UriOpt,
) -> None:
    """Take no new trials; running ones finish (or stop, with --cancel)."""
    from mltrail.sweeps import stop as stop_sweep

    sweep = stop_sweep(sweep_id, cancel=cancel, uri=uri)
    if as_json:
        print_json(to_wire(sweep))
        return
    running = sweep.counts.get("running", 0)
    then = " (they stop at their next heartbeat)" if cancel else " (they finish)"
    console.print(
        f"sweep {sweep.id} {sweep.state}; {running} trials running" + (then if running else "")
    )
    console.print(f"resume it with: mltrail sweep resume {sweep.id}")


@app.command("resume")
def resume(
    sweep_id: str = _SWEEP_ID,
    as_json: bool = JsonOpt,
    uri: str = UriOpt,
) -> None:
    """Let a stopped sweep take trials again (then start agents)."""
    from mltrail.sweeps import resume as resume_sweep

    sweep = resume_sweep(sweep_id, uri=uri)
    if as_json:
        print_json(to_wire(sweep))
        return
    console.print(
        f"sweep {sweep.id} {sweep.state}; start agents with: {_agent_command(sweep, uri)}"
    )


def agent(
    sweep_id: str = typer.Argument(..., help="The sweep's id (mltrail sweep CONFIG prints it)."),
    count: int = typer.Option(None, "--count", "-n", min=1, help="Run at most this many trials."),
    project: str = typer.Option(
        None, "--project", "-p", help="Check the sweep is in this project."
    ),
    as_json: bool = JsonOpt,
    uri: str = UriOpt,
) -> None:
    """Run trials of a sweep's program until the sweep is done (start as many as you like)."""
    from mltrail.sweeps import agent as run_agent

    trials = run_agent(sweep_id, count=count, project=project, uri=uri)
    if as_json:
        print_json([to_wire(t) for t in trials])
        return
    table = Table(title=Text(f"trials run by this agent for sweep {sweep_id}"), header_style="bold")
    for col in ("#", "run", "status", "value"):
        table.add_column(col, justify="right" if col in ("#", "value") else "left")
    for t in trials:
        table.add_row(str(t.number), cell(t.run_id), _status(t.status), cell(t.value))
    console.print(table if trials else "no trial to run: the sweep is done or stopped")
