"""``mltrail import mlflow|tensorboard|wandb|neptune SOURCE...``: bring history from
other trackers.

One command for every source kind (the options that only one kind reads say so). It
draws a progress bar, then prints what was imported and what was skipped and why;
``--json`` prints the same as JSON. Importing the same source again adds nothing.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from mltrail.cli._common import JsonOpt, UriOpt, console, err_console, print_json
from mltrail.errors import InvalidValueError

if TYPE_CHECKING:
    from mltrail.importers._base import ImportReport, Tracker


class Kind(str, enum.Enum):
    mlflow = "mlflow"
    tensorboard = "tensorboard"
    wandb = "wandb"
    neptune = "neptune"


_KIND = typer.Argument(..., help="What to import from: mlflow, tensorboard, wandb or neptune.")
_SOURCES = typer.Argument(
    ...,
    help="mlflow: a tracking server URL, an mlruns folder or a SQLite file; tensorboard: "
    "the log folder (one run per subfolder); wandb: offline run folders, wandb/ folders or "
    ".wandb files; neptune: neptune-exporter's --data-path.",
    show_default=False,
)
_PROJECT = typer.Option(
    None, "--project", "-p", help="Put every imported run in this project [default: the source's]"
)
_FILES_PATH = typer.Option(
    None, "--files-path", help="neptune: neptune-exporter's --files-path, for file attributes."
)
_STEP_MULTIPLIER = typer.Option(
    1, "--step-multiplier", min=1, help="neptune: multiply decimal steps into integers."
)


@contextmanager
def _progress(enabled: bool) -> Iterator[Tracker]:
    from mltrail.importers._base import NullTracker, Tracker

    if not enabled:
        yield NullTracker()
        return

    class Bar(Tracker):
        def __init__(self, progress: Progress) -> None:
            self.progress = progress
            self.task = progress.add_task("reading the source", total=None)

        def total(self, count: int, what: str) -> None:
            self.progress.update(self.task, total=count, description=f"importing {what}")

        def advance(self, label: str) -> None:
            self.progress.update(self.task, advance=1, description=escape(label[:40]))

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())  # fmt: skip
    with Progress(*columns, console=err_console, transient=True) as progress:
        yield Bar(progress)


def _import(kind: Kind, sources: list[str], client: Any, tracker: Tracker,
            options: dict[str, Any]) -> ImportReport:  # fmt: skip
    import importlib

    if kind is not Kind.wandb and len(sources) != 1:
        raise InvalidValueError(f"mltrail import {kind.value} takes one source, not {len(sources)}")
    module = importlib.import_module(f"mltrail.importers.{kind.value}")
    importer = getattr(module, f"import_{kind.value}")
    source: Any = [Path(s) for s in sources] if kind is Kind.wandb else sources[0]
    report: ImportReport = importer(source, client, tracker=tracker, **options)
    return report


def _print(report: ImportReport) -> None:
    kinds = Counter(i["kind"] for i in report.imported)
    done = ", ".join(f"{n} {k.replace('_', ' ')}s" for k, n in sorted(kinds.items())) or "nothing"
    console.print(f"imported {done} from {escape(report.source)}")
    for item in report.imported:
        extra = f" ({item['metric_points']} metric points)" if "metric_points" in item else ""
        console.print(f"  [green]+[/] {item['kind']} {escape(item['source_id'])} -> "
                      f"{escape(item['target'])}{extra}")  # fmt: skip
    if report.skipped:
        console.print(f"skipped {len(report.skipped)}:")
    for item in report.skipped:
        console.print(f"  [yellow]-[/] {item['kind']} {escape(item['source_id'])}: "
                      f"{escape(item['reason'])}")  # fmt: skip


def import_(
    kind: Kind = _KIND,
    sources: list[str] = _SOURCES,
    project: str | None = _PROJECT,
    files_path: Path | None = _FILES_PATH,
    step_multiplier: int = _STEP_MULTIPLIER,
    as_json: bool = JsonOpt,
    uri: str = UriOpt,
) -> None:
    """Import runs, metrics and models from MLflow, TensorBoard, W&B or Neptune.

    mlflow: experiments, runs (params, tags, full metric histories, artifacts),
    registered models with versions, aliases and stages. tensorboard: scalars and
    hparams. wandb: offline runs (config, history, system stats, summary, files).
    neptune: the Parquet files of neptune-exporter (params, float series, files).
    """
    from mltrail.client.client import Client

    options: dict[str, Any] = {"project": project}
    if kind is Kind.neptune:
        options.update(files_path=files_path, step_multiplier=step_multiplier)
    client = Client(uri)
    with _progress(not as_json) as tracker:
        report = _import(kind, sources, client, tracker, options)
    if as_json:
        print_json(report.as_dict())
    else:
        _print(report)
