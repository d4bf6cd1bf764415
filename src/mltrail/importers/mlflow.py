"""Import from MLflow: a tracking server URL, an ``mlruns`` folder or a SQLite file.

>>> from mltrail.importers.mlflow import import_mlflow
>>> report = import_mlflow("./mlruns", mltrail.Client())  # doctest: +SKIP

MLflow's own client reads the source (``pip install 'mltrail[import-mlflow]'``), so
whatever it can read works: ``http(s)://host:5000``, a folder (the file store), a
``.db``/``.sqlite`` file, or any tracking URI. What maps to what:

- experiment -> project (its name, ``/`` as ``-``; ``project=`` puts every run in one);
- run -> run with its name, user, start/end times and status (``RUNNING`` becomes
  ``crashed``: nothing will finish it), parent (``mlflow.parentRunId``), notes
  (``mlflow.note.content``), the other tags as they are, params typed back from text
  (``"0.1"`` -> 0.1), every metric's full history (steps, values, timestamps), and the
  run's artifacts as the ``file`` artifact ``run-<run id>``;
- registered model -> registered model; each version's files become the ``model``
  artifact ``<model name>`` and a new version linked to the imported run, with the
  MLflow version number in its metadata (``mlflow_version``); aliases move to the new
  numbers; stages ``Staging``/``Production``/``Archived`` are promoted (as far as the
  registry policy allows; otherwise listed as skipped).

Run ids are derived from MLflow's run ids, so importing again adds nothing.
"""

from __future__ import annotations

import importlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mltrail.errors import MltrailError
from mltrail.importers._base import (
    NULL_TRACKER,
    ImportReport,
    RunWriter,
    Tracker,
    parse_param,
    project_name,
    require,
)
from mltrail.integrations._common import artifact_name

if TYPE_CHECKING:
    from mltrail.client.client import Client

__all__ = ["import_mlflow", "mlflow_uri"]

_STATUS = {"FINISHED": "finished", "FAILED": "failed", "KILLED": "killed"}
_DROP_TAGS = {"mlflow.runName", "mlflow.note.content", "mlflow.parentRunId"}


def mlflow_uri(source: str) -> str:
    """The MLflow tracking URI for a URL, a folder or a SQLite file."""
    if "://" in source:
        return source
    path = Path(source).expanduser().resolve()
    if path.is_file() or path.suffix in (".db", ".sqlite", ".sqlite3"):
        return f"sqlite:///{path}"
    return path.as_uri()


@contextmanager
def _file_store_allowed() -> Iterator[None]:
    old = os.environ.get("MLFLOW_ALLOW_FILE_STORE")
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"  # MLflow 3 refuses folders otherwise
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("MLFLOW_ALLOW_FILE_STORE", None)
        else:
            os.environ["MLFLOW_ALLOW_FILE_STORE"] = old


def import_mlflow(
    source: str,
    client: Client,
    *,
    project: str | None = None,
    tracker: Tracker = NULL_TRACKER,
) -> ImportReport:
    """Import every experiment, run and registered model of ``source`` into ``client``."""
    tracking = require("mlflow.tracking", "import-mlflow", "Importing from MLflow")
    view_type = importlib.import_module("mlflow.entities").ViewType
    uri = mlflow_uri(source)
    report = ImportReport(source=f"mlflow:{uri}")
    writer = RunWriter(client, "mlflow")
    with _file_store_allowed():
        mc = tracking.MlflowClient(tracking_uri=uri, registry_uri=uri)
        experiments = mc.search_experiments(view_type=view_type.ALL)
        runs: list[tuple[Any, Any]] = []
        for exp in experiments:
            token = None
            while True:
                page = mc.search_runs(
                    [exp.experiment_id],
                    run_view_type=view_type.ALL,
                    max_results=1000,
                    page_token=token,
                )
                runs.extend((exp, r) for r in page)
                token = page.token
                if not token:
                    break
        models = _registered_models(mc)
        tracker.total(len(runs) + sum(len(v) for _, v in models), "runs and model versions")
        # parents first, so a child's parent exists when the child is created
        runs.sort(key=lambda er: "mlflow.parentRunId" in er[1].data.tags)
        imported: dict[str, tuple[str, str]] = {}  # mlflow run id -> (run id, project)
        for exp, run in runs:
            target = project_name(project or exp.name)
            try:
                rid = _import_run(mc, uri, writer, report, run, target)
                imported[run.info.run_id] = (rid, target)
            except MltrailError as exc:
                report.skip("run", run.info.run_id, exc.message)
            tracker.advance(run.info.run_name or run.info.run_id)
        for model, versions in models:
            _import_model(mc, uri, client, writer, report, model, versions, imported, tracker)
    return report


def _registered_models(mc: Any) -> list[tuple[Any, list[Any]]]:
    out = []
    try:
        found = mc.search_registered_models(max_results=1000)
    except Exception:  # a tracking store without a registry
        return []
    for model in found:
        name = model.name.replace("'", "\\'")
        versions = list(mc.search_model_versions(f"name = '{name}'"))
        versions.sort(key=lambda v: int(v.version))
        out.append((model, versions))
    return out


def _import_run(
    mc: Any, uri: str, writer: RunWriter, report: ImportReport, run: Any, project: str
) -> str:
    info, data = run.info, run.data
    source_id = info.run_id
    rid = writer.run_id(source_id)
    if writer.complete(rid):
        report.skip("run", source_id, f"already imported as run {rid}")
        return rid
    tags = {k: v for k, v in data.tags.items() if k not in _DROP_TAGS}
    parent = data.tags.get("mlflow.parentRunId")
    started = (info.start_time or 0) / 1000
    writer.create(
        rid,
        source_id,
        project=project,
        name=info.run_name or data.tags.get("mlflow.runName"),
        started_at=started,
        user=info.user_id or None,
        tags=tags,
        notes=data.tags.get("mlflow.note.content", ""),
        parent_id=writer.run_id(parent) if parent else None,
        metadata={
            "mlflow": {
                "experiment_id": info.experiment_id,
                "artifact_uri": info.artifact_uri,
                "tracking_uri": uri,
            }
        },
    )
    writer.params(rid, {k: parse_param(v) for k, v in data.params.items()})
    points = 0
    for key in data.metrics:
        history = mc.get_metric_history(info.run_id, key)
        points += writer.metrics(rid, key, ((m.step, m.value, m.timestamp / 1000) for m in history))
    files = _download(uri, run_id=info.run_id) if mc.list_artifacts(info.run_id) else None
    if files is not None:
        with files as folder:
            writer.artifact(
                rid,
                project,
                folder,
                name=f"run-{rid}",
                metadata={"source": "mlflow", "artifact_uri": info.artifact_uri},
            )
    status = _STATUS.get(info.status, "crashed")
    writer.finish(
        rid,
        source_id,
        status=status,
        ended_at=(info.end_time or info.start_time or 0) / 1000,
        reason=None if status != "crashed" else f"imported while {info.status} in MLflow",
    )
    report.add("run", source_id, rid, project=project, metric_points=points)
    return rid


class _Downloaded:
    """A temporary folder holding downloaded artifacts, removed on exit."""

    def __init__(self, uri: str, **where: Any) -> None:
        self.uri = uri
        self.where = where
        self._tmp = tempfile.TemporaryDirectory(prefix="mltrail-mlflow-")

    def __enter__(self) -> Path:
        import mlflow.artifacts

        path = mlflow.artifacts.download_artifacts(
            dst_path=self._tmp.name, tracking_uri=self.uri, **self.where
        )
        return Path(path)

    def __exit__(self, *exc: object) -> None:
        self._tmp.cleanup()


def _download(uri: str, **where: Any) -> _Downloaded:
    return _Downloaded(uri, **where)


def _import_model(
    mc: Any,
    uri: str,
    client: Client,
    writer: RunWriter,
    report: ImportReport,
    model: Any,
    versions: list[Any],
    imported: dict[str, tuple[str, str]],
    tracker: Tracker,
) -> None:
    from mltrail.errors import ModelNotFound

    name = model.name
    try:
        client.get_model(name)
    except ModelNotFound:
        try:
            client.create_model(
                name,
                description=model.description or "",
                tags={k: str(v) for k, v in (model.tags or {}).items()},
            )
        except MltrailError as exc:
            for v in versions:
                report.skip("model_version", f"{name}/{v.version}", exc.message)
                tracker.advance(f"{name} v{v.version}")
            return
    existing = {
        mv.metadata.get("mlflow_version"): mv.version
        for mv in client.model_versions(name)
        if mv.metadata.get("imported_from") == "mlflow"
    }
    numbers: dict[str, int] = {}
    for v in versions:
        key = f"{name}/{v.version}"
        tracker.advance(f"{name} v{v.version}")
        if int(v.version) in existing:
            numbers[str(v.version)] = existing[int(v.version)]
            report.skip(
                "model_version", key, f"already imported as {name}@{numbers[str(v.version)]}"
            )
            continue
        run_id, project = imported.get(v.run_id or "", (None, "default"))
        try:
            with _download(uri, artifact_uri=v.source) as folder:
                art = writer.artifact(
                    run_id,
                    project,
                    folder,
                    name=artifact_name(name),
                    type="model",
                    metadata={"source": "mlflow", "mlflow_source": v.source},
                )
            mv = client.register_model(
                art,
                name,
                run_id=run_id,
                description=v.description or "",
                metadata={
                    "imported_from": "mlflow",
                    "mlflow_version": int(v.version),
                    "mlflow_source": v.source,
                },
                reason="imported from MLflow",
            )
        except (MltrailError, OSError) as exc:
            report.skip("model_version", key, getattr(exc, "message", str(exc)))
            continue
        except Exception as exc:  # MLflow could not download the version's files
            report.skip("model_version", key, f"could not download {v.source}: {exc}")
            continue
        assert mv is not None
        numbers[str(v.version)] = mv.version
        report.add("model_version", key, f"{name}@{mv.version}")
        stage = (v.current_stage or "None").lower()
        if stage in ("staging", "production", "archived"):
            try:
                client.promote(f"{name}@{mv.version}", stage, reason="imported from MLflow")
            except MltrailError as exc:
                report.skip("stage", key, f"{stage}: {exc.message}")
    for alias, version in (getattr(model, "aliases", None) or {}).items():
        target = numbers.get(str(version))
        if target is None:
            report.skip("alias", f"{name}@{alias}", f"version {version} was not imported")
            continue
        try:
            client.set_model_alias(name, alias, target, reason="imported from MLflow")
        except MltrailError as exc:
            report.skip("alias", f"{name}@{alias}", exc.message)
