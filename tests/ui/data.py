"""The store the UI tests browse: built once per session with the public API.

- project ``vision``: 60 finished or failed runs (params, tags, loss/acc histories), one
  run still running (``live``), one ``long`` run with a 200,000-point ``loss``, and ``rich``: git
  metadata with a diff, console output, an input dataset and an output model artifact
  holding a text file, a CSV table, a JSON file and a PNG image;
- project ``empty``: no runs; project ``big``: 1,000 runs (scrolling);
- registered model ``vision-net``: v1 (from ``rich``, in staging, alias ``champion``)
  and v2 (from another run), both with an input signature and a model card.
"""

from __future__ import annotations

import base64
import json
import math
import os
import random
import time
from array import array
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import mltrail
from mltrail.series import Series

PROJECT = "vision"
MODEL = "vision-net"
LONG_POINTS = 200_000
BIG = 1000  # runs of project "big"
# a 4x4 PNG (red/blue checkers)
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAQAAAAECAIAAAAmkwkpAAAAIElEQVR4nGP4z8Dwn4EBQjL8Z2D4z8DwH4YJ"
    "+QcAXtYL9dHkH+0AAAAASUVORK5CYII="
)
LEAN = {
    "MLTRAIL_CAPTURE_PACKAGES": "0",
    "MLTRAIL_CAPTURE_GIT": "0",
    "MLTRAIL_SYSTEM_INTERVAL": "0",
    "MLTRAIL_CONSOLE": "off",
    "MLTRAIL_FLUSH_INTERVAL": "0.05",
}
DIFF = """diff --git a/train.py b/train.py
index 1111111..2222222 100644
--- a/train.py
+++ b/train.py
@@ -1,4 +1,4 @@
 import mltrail
-LR = 0.1
+LR = 0.01
 run = mltrail.init(project="vision")
"""


@dataclass(frozen=True)
class UiData:
    store_uri: str
    rich: str  # run ids
    long: str
    running: str
    runs: tuple[str, ...]  # the 60 ordinary runs, oldest first


@contextmanager
def _env(values: dict[str, str]) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _history(run: mltrail.Run, rng: random.Random, steps: int) -> None:
    decay = rng.uniform(5, 30)
    for step in range(steps):
        loss = math.exp(-step / decay) + rng.uniform(0, 0.05)
        run.log({"loss": loss, "acc": 1 - loss / 2, "lr": 0.1 * 0.99**step}, step=step)
    run.log({"val/acc": rng.uniform(0.6, 0.99)}, step=steps)


def build(base: Path, big: int = BIG) -> UiData:
    base.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{base / 'mltrail.db'}"
    rng = random.Random(11)
    with _env(LEAN):
        ids = []
        for i in range(60):
            run = mltrail.init(
                project=PROJECT, uri=uri, name=f"run-{i:02d}",
                config={"lr": rng.choice([0.1, 0.01, 0.001]),
                        "optimizer": rng.choice(["adam", "sgd"]),
                        "batch_size": rng.choice([32, 64]), "model": {"depth": 2 + i % 3}},
                tags={"team": rng.choice(["cv", "nlp"])},
            )  # fmt: skip
            _history(run, rng, 40)
            run.finish("failed" if i % 10 == 9 else "finished")
            ids.append(run.id)
        data_dir = base / "dataset"
        data_dir.mkdir()
        (data_dir / "train.csv").write_text("x,y\n1,2\n3,4\n")
        with mltrail.init(project=PROJECT, uri=uri, name="prepare") as prep:
            prep.log_artifact(data_dir, name="images", type="dataset")
        rich = mltrail.init(
            project=PROJECT, uri=uri, name="rich", notes="the run with everything",
            config={"lr": 0.01, "optimizer": "adam", "batch_size": 64, "model": {"depth": 4}},
            tags={"team": "cv", "stage": "dev"},
        )  # fmt: skip
        rich.use_artifact("images:latest")
        _history(rich, rng, 60)
        for step in range(30):
            rich.log({"system/cpu_percent": 20 + step % 7}, step=step)
        store = rich._store  # type: ignore[attr-defined]
        store.merge_metadata(rich.id, {
            "git": {"commit": "2222222abcdef", "branch": "main", "dirty": True,
                    "remote": "https://example.invalid/vision.git", "diff": DIFF},
            "code": {"command": "python train.py --lr 0.01", "program": "train.py"},
            "hardware": {"cpu": {"model": "Test CPU", "logical": 2}, "memory_total_bytes": 2**34},
            "packages": {"numpy": "2.0.0", "mltrail": mltrail.__version__},
        })  # fmt: skip
        store.append_logs(rich.id, "epoch 1: loss 0.9\nepoch 2: loss 0.5\n")
        out = base / "model"
        out.mkdir()
        (out / "notes.txt").write_text("trained for 60 steps\n")
        (out / "metrics.csv").write_text("epoch,loss,acc\n1,0.9,0.55\n2,0.5,0.75\n")
        (out / "config.json").write_text(json.dumps({"lr": 0.01, "layers": [64, 32]}))
        (out / "plot.png").write_bytes(PNG)
        (out / "weights.bin").write_bytes(bytes(range(256)) * 4)
        model_v1 = rich.log_artifact(out, name="vision-model", type="model")
        rich.finish()
        other = mltrail.init(project=PROJECT, uri=uri, name="rich-2", config={"lr": 0.001})
        _history(other, rng, 20)
        (out / "notes.txt").write_text("second model\n")
        model_v2 = other.log_artifact(out, name="vision-model", type="model")
        other.finish()

        long = mltrail.init(project=PROJECT, uri=uri, name="long", config={"lr": 0.1})
        long.finish()
        steps = array("q", range(LONG_POINTS))
        values = array("d", (math.exp(-i / 40_000) + 0.02 * math.sin(i / 300) for i in steps))
        stamps = array("d", (1.7e9 + i * 0.01 for i in steps))
        store.write_metrics(long.id, {"loss": Series(steps, values, stamps)})

        # a run still running (a heartbeat in the future: it does not turn crashed)
        running = f"live{rng.randrange(10**8):08d}"
        store.create_run(
            run_id=running, project=PROJECT, name="live", user="ui", group=None, job_type=None,
            parent_id=None, notes="", tags={}, metadata={}, started_at=time.time(),
        )  # fmt: skip
        store.update_run(running, heartbeat_at=time.time() + 86_400)
        store.write_metrics(
            running, {"loss": Series(array("q", [0]), array("d", [1.0]), array("d", [time.time()]))}
        )
        store.get_or_create_project("empty")
        for i in range(big):  # enough rows to scroll: only the visible ones are in the DOM
            run_id = f"big{i:05d}"
            store.create_run(
                run_id=run_id, project="big", name=f"b-{i:04d}", user=None, group=None,
                job_type=None, parent_id=None, notes="", tags={}, metadata={},
                started_at=1.7e9 + i,
            )  # fmt: skip
            store.update_run(run_id, status="finished", ended_at=1.7e9 + i + 1)

        client = mltrail.Client(uri)
        example = [[0.1, 0.2, 0.3]]
        meta = {"framework": "numpy", "framework_version": "2.0", "training_dataset": "images:v0"}
        v1, v2 = (
            client.register_model(artifact, MODEL, input_example=example, metadata=meta,
                                  description=text)
            for artifact, text in ((model_v1, "first"), (model_v2, "second"))
        )  # fmt: skip
        assert v1 is not None and v2 is not None
        client.promote(v1, "staging", reason="looks good")
        client.set_model_alias(MODEL, "champion", v1.version)
        client.update_model_card(f"{MODEL}@{v1.version}", "# Vision net\n\nA **small** model.\n")
    return UiData(uri, rich.id, long.id, running, tuple(ids))
