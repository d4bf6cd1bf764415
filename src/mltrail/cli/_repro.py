"""How captured run metadata (git, code, env, hardware, packages) is shown and compared."""

from __future__ import annotations

from typing import Any

__all__ = ["diff_sections", "show_rows"]


def _gib(n: Any) -> str | None:
    return f"{n / 2**30:.1f} GiB" if isinstance(n, (int, float)) else None


def _gpus(hw: dict[str, Any]) -> str | None:
    gpus = hw.get("gpus") or []
    if not gpus:
        return None
    names = [str(g.get("name", "?")) for g in gpus]
    return f"{len(gpus)} x {names[0]}" if len(set(names)) == 1 else ", ".join(names)


def show_rows(meta: dict[str, Any], last: dict[str, float]) -> list[tuple[str, str]]:
    """Label/value rows for ``runs show``; absent information is left out."""
    git = meta.get("git") or {}
    code = meta.get("code") or {}
    env = meta.get("env") or {}
    hw = meta.get("hardware") or {}
    cpu = hw.get("cpu") or {}
    rows: list[tuple[str, Any]] = []
    if git:
        commit = str(git.get("commit") or "")[:12]
        state = " (dirty)" if git.get("dirty") else ""
        rows.append(("git", f"{commit} on {git.get('branch') or '?'}{state}"))
        if git.get("remote"):
            rows.append(("remote", git["remote"]))
    command = code.get("command") or " ".join(meta.get("command", []))
    rows.append(("command", command or None))
    if env:
        rows.append(("python", f"{env.get('python', '?')} ({env.get('implementation', '')})"))
        rows.append(("os", env.get("os") or env.get("platform")))
        rows.append(("host", env.get("hostname")))
        if env.get("container"):
            rows.append(("container", env["container"]))
        if env.get("slurm"):
            rows.append(("slurm", ", ".join(f"{k}={v}" for k, v in env["slurm"].items())))
    if cpu:
        rows.append(("cpu", f"{cpu.get('model') or '?'} ({cpu.get('logical', '?')} threads)"))
    rows.append(("memory", _gib(hw.get("memory_total_bytes"))))
    rows.append(("gpus", _gpus(hw)))
    packages = meta.get("packages") or {}
    if packages:
        rows.append(("packages", f"{len(packages)} installed (runs diff compares them)"))
    seeds = meta.get("seeds")
    if seeds:
        rows.append(("seeds", ", ".join(f"{k}={v}" for k, v in sorted(seeds.items()))))
    energy = meta.get("energy") or {}
    kwh = energy.get("energy_kwh", last.get("system/energy_kwh"))
    if isinstance(kwh, (int, float)):
        co2 = energy.get("co2e_g", last.get("system/co2e_g"))
        extra = f", {co2:.2f} gCO2e" if isinstance(co2, (int, float)) else ""
        how = f" ({energy['source']})" if energy.get("source") else ""
        rows.append(("energy", f"{kwh:.6f} kWh{extra}{how}"))
    return [(k, str(v)) for k, v in rows if v not in (None, "")]


def diff_sections(meta: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Flat comparable sections for ``runs diff``."""
    git = meta.get("git") or {}
    code = meta.get("code") or {}
    env = meta.get("env") or {}
    hw = meta.get("hardware") or {}
    cpu = hw.get("cpu") or {}
    return [
        ("git", {k: git.get(k) for k in ("commit", "branch", "dirty", "remote") if git}),
        (
            "code",
            {
                "command": code.get("command") or " ".join(meta.get("command", [])) or None,
                "program": code.get("program"),
            },
        ),
        (
            "env",
            {k: env.get(k) for k in ("python", "os", "hostname", "container", "ci") if env},
        ),
        (
            "hardware",
            {
                "cpu": cpu.get("model"),
                "cpu_threads": cpu.get("logical"),
                "memory": _gib(hw.get("memory_total_bytes")),
                "gpus": _gpus(hw),
            },
        ),
        ("packages", dict(meta.get("packages") or {})),
        ("seeds", dict(meta.get("seeds") or {})),
    ]
