"""Every command, sub-command, option and argument has help text, and ``--help`` works.

Like sqlite-utils' ``tests/test_docs.py``: the command tree is walked, so a command
added without help fails here without anyone listing it.
"""

from __future__ import annotations

from typing import Any

import pytest
import typer
from typer.core import TyperArgument, TyperGroup, TyperOption
from typer.testing import CliRunner

from mltrail.cli import app
from tests.cli.helpers import PLAIN_ENV, ok

Path = tuple[str, ...]


def _walk(cmd: Any, path: Path = ()) -> list[tuple[Path, Any]]:
    found = [(path, cmd)]
    if isinstance(cmd, TyperGroup):
        for name, sub in sorted(cmd.commands.items()):
            found += _walk(sub, (*path, name))
    return found


def _params(commands: list[tuple[Path, Any]]) -> Any:
    return pytest.mark.parametrize(
        ("path", "cmd"), commands, ids=[" ".join(p) or "mltrail" for p, _ in commands]
    )


COMMANDS = _walk(typer.main.get_command(app))
GROUPS = [(p, c) for p, c in COMMANDS if isinstance(c, TyperGroup)]
LEAVES = [(p, c) for p, c in COMMANDS if not isinstance(c, TyperGroup)]


def test_the_walk_finds_every_command() -> None:
    found = {" ".join(p) for p, _ in COMMANDS}
    assert found >= {"", "runs", "runs ls", "runs show", "runs diff", "projects", "projects ls"}
    assert "sync" in found


@_params(COMMANDS)
def test_command_has_help_text(path: Path, cmd: Any) -> None:
    assert (cmd.help or "").strip()


@_params(COMMANDS)
def test_every_option_and_argument_has_help_text(path: Path, cmd: Any) -> None:
    params = [p for p in cmd.params if isinstance(p, (TyperOption, TyperArgument))]
    assert len(params) == len(cmd.params)
    assert [p.name for p in params if not (p.help or "").strip()] == []


@_params(COMMANDS)
def test_help_option_shows_usage_help_and_every_option(
    runner: CliRunner, path: Path, cmd: Any
) -> None:
    out = " ".join(ok(runner.invoke(app, [*path, "--help"], env=PLAIN_ENV)).split())
    assert out.startswith(f"Usage: {' '.join(('mltrail', *path))} [OPTIONS]")
    first_words = " ".join(cmd.help.split()[:4])
    assert first_words in out
    for param in cmd.params:
        if isinstance(param, TyperOption):
            assert param.opts[0] in out
        else:
            assert param.name in out
    for name in getattr(cmd, "commands", {}):
        assert name in out


@_params(GROUPS)
def test_group_without_a_command_shows_its_help(runner: CliRunner, path: Path, cmd: Any) -> None:
    result = runner.invoke(app, list(path), env=PLAIN_ENV)
    assert result.exit_code == 2  # click counts it as a usage error, but prints the help
    assert "Usage:" in result.output
    assert all(name in result.output for name in cmd.commands)


# Commands whose output is the raw text a run printed: no table, so no --json either.
RAW_TEXT = {("runs", "logs")}
# Commands that neither read a store nor print records: the server itself (its --store
# reads MLTRAIL_TRACKING_URI too) and saving or forgetting a login.
NO_STORE = {("server",), ("ui",), ("login",), ("logout",)}
SHARED = [
    (path, cmd, option)
    for path, cmd in LEAVES
    if path not in NO_STORE
    for option in ("--json", "--tracking-uri")
    if not (option == "--json" and path in RAW_TEXT)
]


@pytest.mark.parametrize(
    ("path", "cmd", "option"), SHARED, ids=[f"{' '.join(p)} {o}" for p, _, o in SHARED]
)
def test_shared_options_on_every_command(path: Path, cmd: Any, option: str) -> None:
    assert option in {o for p in cmd.params for o in p.opts}


def test_tracking_uri_reads_the_environment_on_every_command() -> None:
    for path, cmd in LEAVES:
        if path in NO_STORE:
            continue
        (uri,) = [p for p in cmd.params if "--tracking-uri" in p.opts]
        assert uri.envvar == "MLTRAIL_TRACKING_URI"


def test_root_help_offers_shell_completion_and_version(runner: CliRunner) -> None:
    out = ok(runner.invoke(app, ["--help"], env=PLAIN_ENV))
    for option in ("--install-completion", "--show-completion", "--version", "--help"):
        assert option in out
