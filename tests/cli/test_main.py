"""The ``mltrail`` entry point: version, exit codes, errors without tracebacks, completion.

``main()`` maps each ``MltrailError`` to its ``exit_code`` and prints its message and
hint; click usage errors exit 2. Checked in-process through ``main()`` and, end to end,
as ``python -m mltrail`` and the installed ``mltrail`` script.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

import mltrail
from mltrail._version import __version__
from mltrail.cli import app
from mltrail.cli._common import run_app
from tests.cli.conftest import MakeRun, RunMain
from tests.cli.helpers import PLAIN_ENV, loads, mltrail_process, ok, subprocess_env


def test_version(runner: CliRunner) -> None:
    assert ok(runner.invoke(app, ["--version"], env=PLAIN_ENV)) == f"mltrail {__version__}\n"


def test_version_is_eager_and_ignores_what_follows(runner: CliRunner) -> None:
    assert ok(runner.invoke(app, ["--version", "runs", "nosuch"])).startswith("mltrail ")


def test_version_as_a_process() -> None:
    proc = mltrail_process("--version")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, f"mltrail {__version__}\n", "")


def test_missing_things_exit_4_with_the_message_only(store_uri: str, run_main: RunMain) -> None:
    for argv, message in [
        (["runs", "show", "nosuch"], "error: no run with id 'nosuch' in "),
        (["runs", "diff", "nosuch", "other"], "error: no run with id 'nosuch' in "),
        (["runs", "ls", "--project", "nosuch"], "error: no project named 'nosuch'"),
        # printed as is: this id once crashed the error printer itself (a Rich MarkupError)
        (["runs", "show", "[/] [bold]x :smile:"], "error: no run with id '[/] [bold]x :smile:'"),
    ]:
        code, out, err = run_main(*argv, "--tracking-uri", store_uri)
        assert (code, out) == (4, "")
        assert err.startswith(message)
        assert len(err.splitlines()) == 1  # no hint, no traceback, not wrapped


@pytest.mark.parametrize(
    ("uri", "message", "hint"),
    [
        (
            "http://",
            "error: the server URI 'http://' names no host",
            "hint: e.g. http://127.0.0.1:5000",
        ),
        (
            "sqlite:///:memory:",
            "error: in-memory SQLite is not supported as a tracking store",
            "hint: use a file, e.g. sqlite:///./.mltrail/mltrail.db",
        ),
        (
            "ftp://host/x",
            "error: unsupported tracking URI 'ftp://host/x'",
            "hint: use sqlite:///path/to/mltrail.db or postgresql://user@host:port/db",
        ),
    ],
    ids=["http", "memory", "ftp"],
)
@pytest.mark.parametrize("command", [["runs", "ls"], ["projects", "ls"], ["sync"]], ids=" ".join)
def test_bad_uri_exits_78_with_message_and_hint(
    run_main: RunMain, command: list[str], uri: str, message: str, hint: str
) -> None:
    code, out, err = run_main(*command, "--tracking-uri", uri)
    assert (code, out) == (78, "")
    first, second = err.splitlines()
    assert first.startswith(message) and second == hint


def test_unreachable_database_exits_6(run_main: RunMain) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here
    code, out, err = run_main("runs", "ls", "--tracking-uri", f"postgresql://u@127.0.0.1:{port}/db")
    assert (code, out) == (6, "")
    assert err.startswith("error: ") and "Traceback" not in err


def test_password_is_not_printed_in_errors(
    pg_url_factory: Callable[..., str], run_main: RunMain
) -> None:
    uri = pg_url_factory().replace("postgres@", "postgres:s3cret@")  # trust auth ignores it
    code, _, err = run_main("runs", "show", "nosuch", "--tracking-uri", uri)
    assert code == 4
    assert "s3cret" not in err and "postgres:***@" in err


@pytest.mark.parametrize(
    ("argv", "code", "text"),
    [
        ([], 2, "[OPTIONS] COMMAND [ARGS]..."),
        (["runs"], 2, " runs [OPTIONS] COMMAND [ARGS]..."),
        (["runs", "bogus"], 2, "No such command 'bogus'"),
        (["runs", "ls", "--limit", "0"], 2, "Invalid value for '--limit'"),
        (["runs", "ls", "--limit", "ten"], 2, "Invalid value for '--limit'"),
        (["runs", "show"], 2, "Missing argument"),
        (["runs", "ls", "--bogus"], 2, "No such option: --bogus"),
        (["--help"], 0, "[OPTIONS] COMMAND [ARGS]..."),
        (["runs", "diff", "--help"], 0, " runs diff [OPTIONS]"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_usage_errors_and_help_through_main(
    run_main: RunMain, argv: list[str], code: int, text: str
) -> None:
    """Usage errors once escaped ``main()`` as tracebacks with exit code 1."""
    exit_code, out, err = run_main(*argv)
    assert exit_code == code
    assert text in " ".join((out + err).split())
    assert "Traceback" not in err


def test_typer_exit_codes_pass_through_run_app(monkeypatch: pytest.MonkeyPatch) -> None:
    """``raise typer.Exit(3)`` in a command ends the process with 3 (it was lost as 0)."""
    tiny = typer.Typer()

    @tiny.command()
    def fail(code: int) -> None:
        """Exit with CODE."""
        raise typer.Exit(code)

    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    monkeypatch.setattr(sys, "argv", ["tiny", "3"])
    with pytest.raises(SystemExit) as exc:
        run_app(tiny)
    assert exc.value.code == 3


def test_other_exceptions_are_bugs_and_keep_their_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tiny = typer.Typer(pretty_exceptions_enable=False)

    @tiny.command()
    def boom() -> None:
        """Fail."""
        raise RuntimeError("a bug")

    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    monkeypatch.setattr(sys, "argv", ["tiny"])
    with pytest.raises(RuntimeError, match="a bug"):
        run_app(tiny)


# -- as real processes ---------------------------------------------------------------


def test_usage_error_as_a_process() -> None:
    proc = mltrail_process("runs", "bogus")
    assert (proc.returncode, proc.stdout) == (2, "")
    assert "Usage: python -m mltrail runs [OPTIONS] COMMAND" in proc.stderr
    assert "No such command 'bogus'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_runs_as_a_process(make_run: MakeRun, store_uri: str) -> None:
    with make_run(name="e2e", config={"lr": 0.5}) as run:
        run.log({"loss": float("nan")})
    proc = mltrail_process("runs", "ls", "--json", MLTRAIL_TRACKING_URI=store_uri)
    assert (proc.returncode, proc.stderr) == (0, "")
    (data,) = loads(proc.stdout)
    assert (data["id"], data["name"], data["status"]) == (run.id, "e2e", "finished")
    assert data["config"] == {"lr": 0.5} and data["summary"] == {"loss": "NaN"}
    proc = mltrail_process("runs", "show", "nosuch", "--tracking-uri", store_uri)
    assert (proc.returncode, proc.stdout) == (4, "")
    assert proc.stderr.startswith("error: no run with id 'nosuch'")
    assert "Traceback" not in proc.stderr


def test_default_store_is_the_working_directory(runner: CliRunner) -> None:
    """No URI anywhere: ``./.mltrail/mltrail.db``, as ``mltrail.init()`` uses."""
    with mltrail.init(project="here", name="local") as run:
        pass
    assert Path(".mltrail/mltrail.db").is_file()
    (data,) = loads(ok(runner.invoke(app, ["runs", "ls", "--json"], env=PLAIN_ENV)))
    assert (data["id"], data["project"]) == (run.id, "here")


# -- shell completion ----------------------------------------------------------------

SCRIPT = Path(sys.executable).with_name("mltrail")  # the installed console script


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ("mltrail ", {"runs", "projects", "sync"}),
        ("mltrail runs ls --j", {"--json"}),
    ],
)
def test_bash_completion_protocol(words: str, expected: set[str]) -> None:
    env = subprocess_env(
        _MLTRAIL_COMPLETE="complete_bash",
        COMP_WORDS=words,
        COMP_CWORD=str(len(words.split(" ")) - 1),
    )
    proc = subprocess.run([str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert set(proc.stdout.split()) >= expected


def test_show_completion_prints_a_script_for_the_shell() -> None:
    bash = shutil.which("bash")
    assert bash, "bash is needed to check shell detection"
    # Not `exec`: the shell must stay the parent so that Typer can detect it.
    proc = subprocess.run(
        [bash, "-c", '"$0" --show-completion; exit $?', str(SCRIPT)],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "_mltrail_completion" in proc.stdout and "_MLTRAIL_COMPLETE" in proc.stdout
