"""A big artifact file through a server whose objects are on S3 (presigned, multipart).

    .venv/bin/python bench/bench_server_objects.py                 # 5 GiB, 64 MiB parts
    .venv/bin/python bench/bench_server_objects.py --size-gib 1 --part-mib 16
    MLTRAIL_BENCH_QUICK=1 .venv/bin/python bench/bench_server_objects.py   # or --quick: 256 MiB

Issue #8: "a 5 GiB artifact works (multipart)". A moto S3 server and an ``mltrail
server --objects s3://...`` run on loopback; a sparse file of the given size (zeros:
making 5 GiB of random bytes would cost more than the transfer) is stored with
:class:`~mltrail.objects.http.HttpObjectStore` (hashed while read, parts PUT straight
to S3 with presigned URLs, then the server reads the upload back inside "S3" to check
its hash before naming it) and downloaded again (a presigned GET, hashed as written).
Moto keeps objects in memory and temp files and is far slower than real S3, so the
times are an upper bound for the protocol, not a measure of S3. Writes
``bench/results/server_objects.json`` (``server_objects-quick.json`` for --quick).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
MiB, GiB = 1 << 20, 1 << 30
FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(url: str, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{what} did not start")


def run(size: int, part: int, work: Path) -> dict[str, Any]:
    import boto3

    from mltrail.objects.http import HttpObjectStore

    env = {**os.environ, **FAKE_AWS}
    os.environ.update(FAKE_AWS)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        moto_port = _port()
        endpoint = f"http://127.0.0.1:{moto_port}"
        cmd = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(moto_port)]
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))  # fmt: skip
        _wait(f"{endpoint}/moto-api/", procs[-1], "moto")
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="bench-objects")
        port = _port()
        # one CopyObject (<= 5 GiB) to the final key: moto reads the whole source for
        # every UploadPartCopy range, which real S3 does not
        server_env = {**env, "MLTRAIL_S3_ENDPOINT_URL": endpoint,
                      "MLTRAIL_SERVER_PART_SIZE": str(part),
                      "MLTRAIL_S3_COPY_CHUNK": str(5 * GiB),
                      "MLTRAIL_S3_READ_TIMEOUT": "1800"}  # fmt: skip
        meta = f"sqlite:///{work / 'meta.db'}"
        cmd = [sys.executable, "-m", "mltrail", "server", "--port", str(port),
               "--store", meta, "--objects", "s3://bench-objects/o"]  # fmt: skip
        procs.append(subprocess.Popen(cmd, env=server_env, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        _wait(f"{url}/health", procs[-1], "mltrail server")

        src = work / "big.bin"
        with open(src, "wb") as f:
            f.truncate(size)  # sparse
        store = HttpObjectStore(url)
        started = time.perf_counter()
        info = store.put_file(src)
        upload_s = time.perf_counter() - started
        started = time.perf_counter()
        store.get_file(info.oid, work / "back.bin")
        download_s = time.perf_counter() - started
        assert (work / "back.bin").stat().st_size == size
        store.close()
        return {
            "size_bytes": size,
            "part_bytes": part,
            "parts": -(-size // part),
            "oid": info.oid,
            "upload_s": round(upload_s, 2),
            "upload_mib_s": round(size / MiB / upload_s, 1),
            "download_s": round(download_s, 2),
            "download_mib_s": round(size / MiB / download_s, 1),
            "cpus": os.cpu_count(),
            "note": "loopback moto S3 (in-memory, single process): an upper bound",
        }
    finally:
        for proc in reversed(procs):
            proc.terminate()
            proc.wait(30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gib", type=float, default=5.0)
    parser.add_argument("--part-mib", type=int, default=64)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    quick = args.quick or os.environ.get("MLTRAIL_BENCH_QUICK") == "1"
    size = 256 * MiB if quick else int(args.size_gib * GiB)
    with tempfile.TemporaryDirectory(prefix="mltrail-bench-objects-") as tmp:
        result = run(size, args.part_mib * MiB, Path(tmp))
    out = BENCH_DIR / "results" / ("server_objects-quick.json" if quick else "server_objects.json")
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
