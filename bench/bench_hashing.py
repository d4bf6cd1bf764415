"""Which content hash, how fast: BLAKE3 vs SHA-256 vs MD5 on this machine.

    .venv/bin/python bench/bench_hashing.py               # writes bench/results/hashing.json
    .venv/bin/python bench/bench_hashing.py --size-mib 64 --results-dir /tmp/r

Hashes a cached random file (512 MiB, kept in bench/.work/ and read once beforehand so it
sits in the page cache) in streaming blocks, as the object store does, and reports GB/s
(10^9 bytes per second, best of ``--repeat``). Also sweeps BLAKE3's block size and
threading on an in-memory buffer, which is what ``mltrail.objects.hashing`` tunes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import ssl
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
WORK_DIR = BENCH_DIR / ".work"
MiB = 1 << 20
DEFAULT_SIZE = 512 * MiB


def _cached_file(size: int) -> Path:
    path = WORK_DIR / f"hashing-{size // MiB}MiB.bin"
    if not path.exists() or path.stat().st_size != size:
        WORK_DIR.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            for _ in range(0, size, 4 * MiB):
                f.write(os.urandom(min(4 * MiB, size - f.tell())))
        os.replace(tmp, path)
    with open(path, "rb", buffering=0) as f:  # warm the page cache
        while f.read(16 * MiB):
            pass
    return path


def _stream(path: Path, make: Callable[[], Any], block: int) -> str:
    hasher = make()
    buf = bytearray(block)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(view):
            hasher.update(view[:n])
    return str(hasher.hexdigest())


def _best(fn: Callable[[], object], nbytes: int, repeat: int) -> dict[str, Any]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    best = min(times)
    return {"gbps": round(nbytes / best / 1e9, 3), "best_s": round(best, 4), "runs_s": times}


def _machine() -> dict[str, Any]:
    import blake3

    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "blake3": blake3.__version__,
        "openssl": ssl.OPENSSL_VERSION,
        # Other work on the machine skews the figures; a load above the CPU count is noisy.
        "loadavg_1_5_15": [round(x, 2) for x in os.getloadavg()]
        if hasattr(os, "getloadavg")
        else None,
    }


def run(results_dir: Path, *, size: int = DEFAULT_SIZE, repeat: int = 3) -> dict[str, Any]:
    """Measure, write ``results_dir/hashing.json``, return the headline figures."""
    import blake3

    from mltrail.objects.hashing import BLOCK_SIZE, hash_file

    path = _cached_file(size)
    auto = blake3.blake3.AUTO

    def b3_single() -> Any:
        return blake3.blake3()

    def b3_auto() -> Any:
        return blake3.blake3(max_threads=auto)

    file_cases: dict[str, Callable[[], object]] = {
        "blake3": lambda: _stream(path, b3_single, BLOCK_SIZE),
        "blake3_auto_threads": lambda: _stream(path, b3_auto, BLOCK_SIZE),
        "sha256": lambda: _stream(path, hashlib.sha256, BLOCK_SIZE),
        "md5": lambda: _stream(path, hashlib.md5, BLOCK_SIZE),
        "mltrail_hash_file": lambda: hash_file(path),
        "read_only_floor": lambda: _stream(path, _NullHasher, BLOCK_SIZE),
    }
    file_results = {name: _best(fn, size, repeat) for name, fn in file_cases.items()}

    memory = os.urandom(min(size, 256 * MiB))
    view = memoryview(memory)
    sweep: dict[str, Any] = {}
    for threads_name, make in (("1", b3_single), ("auto", b3_auto)):
        for block in (1 * MiB, 4 * MiB, 16 * MiB):

            def hash_memory(make: Callable[[], Any] = make, block: int = block) -> None:
                h = make()
                for i in range(0, len(view), block):
                    h.update(view[i : i + block])
                h.hexdigest()

            key = f"threads={threads_name},block={block // MiB}MiB"
            sweep[key] = _best(hash_memory, len(memory), repeat)

    hashes = {k: v["gbps"] for k, v in file_results.items() if k in ("blake3", "sha256", "md5")}
    fastest = max(hashes, key=lambda k: hashes[k])
    summary = {
        "blake3_gbps": file_results["blake3"]["gbps"],
        "blake3_auto_threads_gbps": file_results["blake3_auto_threads"]["gbps"],
        "sha256_gbps": file_results["sha256"]["gbps"],
        "md5_gbps": file_results["md5"]["gbps"],
        "mltrail_hash_file_gbps": file_results["mltrail_hash_file"]["gbps"],
        "fastest": fastest,
        "blake3_vs_sha256": round(hashes["blake3"] / hashes["sha256"], 2),
    }
    report = {
        "benchmark": "hashing",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": _machine(),
        "file_bytes": size,
        "block_bytes": BLOCK_SIZE,
        "repeat": repeat,
        "unit": "GB/s = 1e9 bytes/s, best of repeat",
        "file": file_results,
        "blake3_memory_sweep": sweep,
        "summary": summary,
    }
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / "hashing.json").write_text(json.dumps(report, indent=2) + "\n")
    return summary


class _NullHasher:
    """Reads without hashing: the I/O floor the hashes are measured on top of."""

    def update(self, data: object) -> None:
        pass

    def hexdigest(self) -> str:
        return ""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--results-dir", type=Path, default=BENCH_DIR / "results")
    parser.add_argument("--size-mib", type=int, default=DEFAULT_SIZE // MiB)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    summary = run(args.results_dir, size=args.size_mib * MiB, repeat=args.repeat)
    for key, value in summary.items():
        print(f"{key:>26}  {value}")
    print(f"wrote {args.results_dir / 'hashing.json'}")


if __name__ == "__main__":
    main()
