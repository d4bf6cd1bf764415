"""``mltrail repro`` and ``mltrail dag``: run and draw the pipeline in mltrail.yaml/dvc.yaml."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.text import Text
from rich.tree import Tree

from mltrail.cli._common import JsonOpt, UriOpt, console, err_console, print_json

__all__ = ["dag", "register", "repro"]

FileOpt = typer.Option(
    None,
    "--file",
    "-f",
    help="Pipeline file or its directory [default: ./mltrail.yaml, else ./dvc.yaml].",
)


def repro(
    stage: str | None = typer.Argument(
        None, help="Run only this stage and the stages it depends on [default: all]."
    ),
    dry: bool = typer.Option(False, "--dry", help="Print what would run and why; run nothing."),
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, help="Run up to N independent stages."),
    force: bool = typer.Option(False, "--force", help="Run the stages even if up to date."),
    project: str | None = typer.Option(
        None, "--project", "-p", help="Project of the runs recorded per stage [default: default]."
    ),
    artifacts: bool = typer.Option(
        True,
        "--artifacts/--no-artifacts",
        help="Log each executed stage's outs as artifacts of its run.",
    ),
    run_cache: bool = typer.Option(
        True,
        "--run-cache/--no-run-cache",
        help="Restore a stage's outs from an earlier run with the same inputs, if any.",
    ),
    file: Path | None = FileOpt,
    as_json: bool = JsonOpt,
    uri: str = UriOpt,
) -> None:
    """Re-run the pipeline stages whose cmd, deps, params or outs changed.

    Compares each stage with mltrail.lock, runs what changed in dependency order (or
    restores its outs from the run cache when these exact inputs ran before), records
    each executed stage as a run, and updates the lock. A failing stage stops the stages
    after it and ends with its exit code.
    """
    from mltrail.pipelines import load_pipeline, plan
    from mltrail.pipelines import repro as run_repro

    pipeline = load_pipeline(file)
    if dry:
        result = plan(pipeline, stage, force=force, uri=uri)
        if as_json:
            print_json({"dry": True, "would_run": result.reasons, "up_to_date": result.skipped})
            return
        for name in result.ran:
            console.print(Text(f"would run {name}: {'; '.join(result.reasons[name])}"))
        for name in result.skipped:
            console.print(Text(f"{name} is up to date"))
        if not result.ran:
            console.print("Nothing to run: the pipeline is up to date.")
        return

    def show(name: str, event: str, reasons: list[str]) -> None:
        out = err_console if as_json else console
        if event == "run":
            out.print(Text(f"Running stage {name}: {'; '.join(reasons)}", style="bold"))
        elif event == "restored":
            out.print(Text(f"Stage {name}: {'; '.join(reasons)}", style="bold"))
        elif event == "skip":
            out.print(Text(f"Stage {name} is up to date"))
        elif event == "failed" and reasons:
            out.print(Text(f"Stage {name} failed: {'; '.join(reasons)}", style="red"))

    done = run_repro(
        pipeline,
        stage,
        jobs=jobs,
        force=force,
        project=project,
        uri=uri,
        log_outputs=artifacts,
        run_cache=run_cache,
        stdout=2 if as_json else None,
        on_event=show,
    )
    if as_json:
        print_json(
            {
                "ran": done.reasons,
                "up_to_date": done.skipped,
                "runs": done.run_ids,
                "restored": done.restored,
            }
        )
    elif not done.ran:
        console.print("Nothing to run: the pipeline is up to date.")
    else:
        executed = [n for n in done.ran if n not in done.restored]
        line = f"Ran {len(executed)} stage(s): {', '.join(executed) or '-'}"
        if done.restored:
            line += f"; restored {len(done.restored)} from the run cache: "
            line += ", ".join(done.restored)
        console.print(Text(line))


def dag(
    fmt: str = typer.Option(
        "text", "--format", help="text (a tree), dot (Graphviz) or mermaid.", case_sensitive=False
    ),
    file: Path | None = FileOpt,
    as_json: bool = JsonOpt,
    uri: str = UriOpt,
) -> None:
    """Draw the pipeline's stages and their dependencies."""
    from mltrail.errors import InvalidValueError
    from mltrail.pipelines import build_dag, load_pipeline, render_dot, render_mermaid
    from mltrail.pipelines.dag import topo_order

    fmt = fmt.lower()
    if fmt not in ("text", "dot", "mermaid"):
        raise InvalidValueError(f"--format {fmt!r} is not one of text, dot, mermaid")
    pipeline = load_pipeline(file)
    graph = build_dag(pipeline, check_files=False)
    if as_json:
        print_json({name: sorted(graph[name]) for name in topo_order(graph)})
    elif fmt == "dot":
        typer.echo(render_dot(graph), nl=False)
    elif fmt == "mermaid":
        typer.echo(render_mermaid(graph), nl=False)
    else:
        down: dict[str, list[str]] = {name: [] for name in graph}
        for name, ups in graph.items():
            for up in ups:
                down[up].append(name)
        tree = Tree(Text(pipeline.path.name, style="bold"))

        def add(node: Tree, name: str, seen: tuple[str, ...]) -> None:
            stage = pipeline.stages[name]
            branch = node.add(Text.assemble((name, "cyan"), f"  {stage.cmd}"))
            for child in sorted(down[name]):
                if child not in seen:
                    add(branch, child, (*seen, child))

        for root in sorted(n for n, ups in graph.items() if not ups):
            add(tree, root, (root,))
        console.print(tree)


def register(app: typer.Typer) -> None:
    """Add ``repro`` and ``dag`` to the root command."""
    app.command("repro")(repro)
    app.command("dag")(dag)
