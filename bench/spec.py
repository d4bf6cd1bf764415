"""What is measured: the tools, the workloads, their sizes per tool and mltrail's targets."""

from __future__ import annotations

from dataclasses import dataclass, field

# Column order of the report. "floor" is a Python list append: the cheapest possible log().
TOOLS = ["mltrail", "mlflow_sync", "mlflow_async", "wandb", "aim", "floor"]
LABELS = {
    "mltrail": "mltrail",
    "mlflow_sync": "MLflow sync",
    "mlflow_async": "MLflow async",
    "wandb": "W&B offline",
    "aim": "Aim",
    "floor": "Python list floor",
}
# Which peer virtualenv runs which tool; mltrail and the floor run in the project's .venv.
PEER_TOOLS = {"mlflow": ["mlflow_sync", "mlflow_async"], "wandb": ["wandb"], "aim": ["aim"]}
DEFAULT_PEERS = ["mlflow", "wandb"]
# Tools whose import and whole-process figures are those of another column (same library).
SAME_LIBRARY = {"mlflow_async": "mlflow_sync"}
IMPORT_NAME = {"mltrail": "mltrail", "mlflow_sync": "mlflow", "wandb": "wandb", "aim": "aim"}

WORKLOADS = [
    "log_call_us",
    "points_1m_single_key_s",
    "steps10k_keys20_s",
    "import_ms",
    "whole_process_s",
    "bytes_per_point",
]


@dataclass(frozen=True)
class Size:
    """How much work one tool does in a workload (full run; --quick divides by 10)."""

    n: int
    block: int = 1000  # log_call_us: calls per timed block
    keys: int = 1


@dataclass(frozen=True)
class Workload:
    name: str
    sizes: dict[str, Size] = field(default_factory=dict)


# Peers are far slower per point than mltrail, so they log fewer points; every report
# row that compares tools with different N compares per-point figures (points/s, µs/call).
LOG_CALL = Workload(
    "log_call_us",
    {
        "mltrail": Size(1_000_000, block=1000),
        "floor": Size(1_000_000, block=1000),
        "mlflow_sync": Size(500, block=10),
        "mlflow_async": Size(1_000, block=10),
        "wandb": Size(20_000, block=100),
        "aim": Size(5_000, block=50),
    },
)
POINTS = Workload(
    "points_1m_single_key_s",
    {
        "mltrail": Size(1_000_000),
        "floor": Size(1_000_000),
        "mlflow_sync": Size(1_000),
        "mlflow_async": Size(2_000),
        "wandb": Size(100_000),
        "aim": Size(20_000),
    },
)
STEPS = Workload(
    "steps10k_keys20_s",
    {
        "mltrail": Size(10_000, keys=20),
        "floor": Size(10_000, keys=20),
        "mlflow_sync": Size(200, keys=20),
        "mlflow_async": Size(200, keys=20),
        "wandb": Size(10_000, keys=20),
        "aim": Size(1_000, keys=20),
    },
)
IMPORT_RUNS = 5  # parent-timed `python -c "import M"` (and as many `python -c pass`)
IMPORT_CHILD_RUNS = 3  # children timing the import in-process
WHOLE_RUNS = 5
# mltrail and the floor are cheap to run, so their sized workloads run this many times
# and the run with the median headline figure is reported (all runs kept in the JSON).
REPEATS = {"mltrail": 3, "floor": 3}

# mltrail's targets (issue #3). Every target is also expressed per point, so a --quick
# run (10x fewer points) is judged on the same rate.
TARGETS = {
    "log_call_median_us": 3.0,
    "points_1m_s": 3.0,  # for 1,000,000 points: >= 333,333 points/s
    "steps10k_keys20_s": 1.0,  # for 200,000 points: >= 200,000 points/s
    "steps_rss_mb": 150.0,  # MB (10^6 bytes) of peak RSS
    "import_ms": 150.0,
}


TARGET_TEXT = {
    "log_call_us": "median <= 3 µs per call",
    "points_1m_single_key_s": "<= 3 s for 1,000,000 points (>= 333,333 points/s)",
    "steps10k_keys20_s": "<= 1 s for 10,000 steps x 20 keys (>= 200,000 points/s); "
    "peak RSS <= 150 MB",
    "import_ms": "<= 150 ms",
    "whole_process_s": None,
    "bytes_per_point": None,
}
TITLES = {
    "log_call_us": 'per-call cost of run.log({"loss": v}, step=i), 1 key per step',
    "points_1m_single_key_s": "single-key points logged and flushed (finish), end to end",
    "steps10k_keys20_s": "steps x 20 keys (one dict per step) logged and flushed, end to end",
    "import_ms": 'python -c "import M" minus python -c pass (median of 5); in-process too',
    "whole_process_s": "a process that imports, inits a run, logs 1 point, finishes (median of 5)",
    "bytes_per_point": "store directory bytes (WAL included) / points, after the points workload",
}


def scaled(size: Size, quick: bool) -> Size:
    """The size of a --quick run: 10x fewer points, at least a few blocks."""
    if not quick:
        return size
    n = max(1, size.n // 10)
    return Size(n, block=max(1, min(size.block, n // 20 or 1)), keys=size.keys)
