"""Import TensorBoard event files: scalars and hparams, one run per folder.

>>> from mltrail.importers.tensorboard import import_tensorboard
>>> import_tensorboard("runs/", mltrail.Client(), project="vision")  # doctest: +SKIP

Every folder under ``logdir`` that holds ``*tfevents*`` files is a run, named after
its path relative to ``logdir`` (as TensorBoard does). The ``tensorboard`` package's
reader (``EventAccumulator``, no sampling) reads them
(``pip install 'mltrail[import-tensorboard]'``): scalars (TF1 ``simple_value`` and TF2
scalar tensors) become metrics with their steps and wall times; hparams
(``add_hparams``, the HParams plugin's session start) become params. Other plugins
(images, histograms, text) are counted as skipped. The run starts at the first event's
wall time and ends at the last. A folder's id is its relative path and the names of its
event files, so importing again adds nothing.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mltrail.errors import MltrailError
from mltrail.importers import _base
from mltrail.importers._base import NULL_TRACKER, ImportReport, RunWriter, Tracker

if TYPE_CHECKING:
    from mltrail.client.client import Client

__all__ = ["import_tensorboard"]


def _run_dirs(logdir: Path) -> list[Path]:
    found = {p.parent for p in logdir.rglob("*tfevents*") if p.is_file()}
    return sorted(found)


def import_tensorboard(
    logdir: str | Path,
    client: Client,
    *,
    project: str | None = None,
    tracker: Tracker = NULL_TRACKER,
) -> ImportReport:
    """Import every run folder under ``logdir`` into ``project`` (default: the name of
    ``logdir``)."""
    module = "tensorboard.backend.event_processing.event_accumulator"
    event_accumulator = _base.require(module, "import-tensorboard", "Importing TensorBoard logs")
    root = _base.source_folder(logdir, "TensorBoard's --logdir")
    target = _base.project_name(project or root.name)
    report = ImportReport(source=f"tensorboard:{root}")
    writer = RunWriter(client, "tensorboard")
    dirs = _run_dirs(root)
    tracker.total(len(dirs), "run folders")
    for folder in dirs:
        rel = folder.relative_to(root).as_posix()
        name = root.name if rel == "." else rel
        files = sorted(p.name for p in folder.iterdir() if "tfevents" in p.name)
        source_id = f"{rel}:{','.join(files)}"
        try:
            _import_dir(event_accumulator, writer, report, folder, name, source_id, target)
        except MltrailError as exc:
            report.skip("run", rel, exc.message)
        tracker.advance(name)
    return report


def _import_dir(
    ea: Any,
    writer: RunWriter,
    report: ImportReport,
    folder: Path,
    name: str,
    source_id: str,
    project: str,
) -> None:
    rid = writer.run_id(source_id)
    if writer.complete(rid):
        report.skip("run", name, f"already imported as run {rid}")
        return
    acc = ea.EventAccumulator(str(folder), size_guidance={ea.SCALARS: 0, ea.TENSORS: 0})
    acc.Reload()
    tags = acc.Tags()
    series: dict[str, list[tuple[int, float, float]]] = defaultdict(list)
    for tag in tags.get("scalars", []):
        series[tag].extend((e.step, e.value, e.wall_time) for e in acc.Scalars(tag))
    try:  # TF2 writers log scalars as tensors of the "scalars" plugin
        scalar_tensors = set(acc.PluginTagToContent("scalars"))
    except KeyError:
        scalar_tensors = set()
    for tag in tags.get("tensors", []):
        if tag not in scalar_tensors:
            continue
        for e in acc.Tensors(tag):
            value = _scalar(e.tensor_proto)
            if value is not None:
                series[tag].append((e.step, value, e.wall_time))
    hparams = _hparams(acc)
    skipped = sorted(k for k in ("images", "audio", "histograms") if tags.get(k))
    if not series and not hparams:
        report.skip("run", name, "no scalars or hparams in its event files")
        return
    times = [p[2] for pts in series.values() for p in pts]
    started = min(times) if times else folder.stat().st_mtime
    writer.create(
        rid,
        source_id,
        project=project,
        name=name,
        started_at=started,
        metadata={"tensorboard": {"logdir": str(folder)}},
    )
    writer.params(rid, hparams)
    points = sum(writer.metrics(rid, tag, pts) for tag, pts in sorted(series.items()))
    writer.finish(rid, source_id, status="finished", ended_at=max(times) if times else started)
    report.add("run", name, rid, project=project, metric_points=points)
    for kind in skipped:
        report.skip(kind, name, f"TensorBoard {kind} are not imported (only scalars and hparams)")


def _scalar(proto: Any) -> float | None:
    from tensorboard.util import tensor_util

    try:
        array = tensor_util.make_ndarray(proto)
    except Exception:
        return None
    if array.size != 1 or array.dtype.kind not in "fiub":
        return None
    return float(array.reshape(()))


def _hparams(acc: Any) -> dict[str, Any]:
    from tensorboard.plugins.hparams import plugin_data_pb2

    out: dict[str, Any] = {}
    try:
        content = acc.PluginTagToContent("hparams")
    except KeyError:
        return out
    for raw in content.values():
        data = plugin_data_pb2.HParamsPluginData.FromString(raw)
        if data.WhichOneof("data") != "session_start_info":
            continue
        for key, value in data.session_start_info.hparams.items():
            kind = value.WhichOneof("kind")
            if kind == "number_value":
                number = value.number_value
                out[key] = int(number) if number.is_integer() else number
            elif kind == "string_value":
                out[key] = value.string_value
            elif kind == "bool_value":
                out[key] = value.bool_value
    return out
