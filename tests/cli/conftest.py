"""Fixtures to run ``mltrail`` in-process: Typer's CliRunner, or the real ``main()``."""

from __future__ import annotations

import sys
from collections.abc import Callable

import pytest
from typer.testing import CliRunner, Result

import mltrail
from mltrail.cli import app, main
from mltrail.cli._common import console
from tests.cli.helpers import PLAIN_ENV

Invoke = Callable[..., Result]
MakeRun = Callable[..., mltrail.Run]
RunMain = Callable[..., tuple[int, str, str]]


CAPTURE_SECTIONS = ("GIT", "DIFF", "ENV", "PACKAGES", "HARDWARE")


@pytest.fixture(autouse=True)
def _only_what_tests_log(
    _isolated: None, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Runs hold exactly what a test logs: no sampled ``system/*`` metrics, and (for speed)
    no captured git, environment, packages or hardware; ``full_capture`` turns it back on.
    Subprocesses inherit this."""
    monkeypatch.setenv("MLTRAIL_SYSTEM_INTERVAL", "0")
    # PostgreSQL stores need their own object location (see mltrail.config.objects_uri).
    monkeypatch.setenv("MLTRAIL_OBJECTS", str(tmp_path_factory.mktemp("objects")))
    for section in CAPTURE_SECTIONS:
        monkeypatch.setenv(f"MLTRAIL_CAPTURE_{section}", "0")


@pytest.fixture
def full_capture(monkeypatch: pytest.MonkeyPatch) -> None:
    for section in CAPTURE_SECTIONS:
        monkeypatch.delenv(f"MLTRAIL_CAPTURE_{section}")


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def cli(runner: CliRunner, store_uri: str, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    """``cli("runs", "ls", ...)``: the command in-process against the test's store.

    ``--tracking-uri STORE`` is appended unless ``uri=False``; ``env`` adds variables;
    ``width`` is the terminal's. (Rich fixes the width when ``COLUMNS`` is set at import,
    as pytest-xdist does, so it is set on the console itself.)
    """

    def invoke(
        *args: str, uri: bool = True, env: dict[str, str | None] | None = None, width: int = 200
    ) -> Result:
        argv = [*args, "--tracking-uri", store_uri] if uri else list(args)
        with monkeypatch.context() as m:
            m.setattr(console, "width", width)
            return runner.invoke(app, argv, env={**PLAIN_ENV, **(env or {})})

    return invoke


@pytest.fixture
def run_main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> RunMain:
    """``run_main(*argv) -> (exit_code, stdout, stderr)`` through the ``mltrail`` entry point.

    Unlike CliRunner this goes through ``main()``, which maps our errors to exit codes.
    """
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # Typer installs its own
    for key, value in PLAIN_ENV.items():
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, value)

    def run(*argv: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["mltrail", *argv])
        capsys.readouterr()  # only what this command prints
        with pytest.raises(SystemExit) as exc:
            main()
        out, err = capsys.readouterr()
        code = exc.value.code
        return (code if isinstance(code, int) else int(bool(code))), out, err

    return run
