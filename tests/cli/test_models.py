"""``mltrail models ...``: the registry workflow through the real CLI, on SQLite and
PostgreSQL: register (gated by --when), promote, archive, alias, roll back, audit,
cards, approvals under a policy, validation, signatures, downloads and retention."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mltrail.cli import models as models_cli
from mltrail.cli._common import fmt_time
from mltrail.cli.artifacts import Transfer
from tests.cli.conftest import Invoke, RunMain
from tests.cli.helpers import header, loads, mltrail_process, ok, rows
from tests.registry import conftest as registry_fixtures
from tests.registry.conftest import Train

# The registry tests' fixtures: isolated objects, cache, signing key and MLTRAIL_USER=alice;
# ``train(val_accuracy)`` makes a finished run that logged a dataset and a model artifact.
_registry_env = registry_fixtures._registry_env
train = registry_fixtures.train

SIG = json.dumps(
    {"format": 1, "inputs": {"type": "columns", "columns": [{"name": "x", "type": "int64"}]}}
)
GATE = "metrics.val_accuracy >= 0.9"
MODEL = "churn-xgboost"


def _data(cli: Invoke, *args: str, env: dict[str, str | None] | None = None) -> Any:
    return loads(ok(cli("models", *args, "--json", env=env)))


def _register(cli: Invoke, train: Train, accuracy: float, *args: str) -> dict[str, Any]:
    """Train a run and register its model artifact (with a signature unless overridden)."""
    _, art = train(accuracy)
    data: dict[str, Any] = _data(
        cli, "register", f"churn/{art.spec}", MODEL, "--signature", SIG, *args
    )
    return data


def _stage(cli: Invoke, version: int) -> str:
    stage: str = _data(cli, "show", f"{MODEL}@{version}")["stage"]
    return stage


def test_register_when_promote_archive_verify_download(
    cli: Invoke,
    run_main: RunMain,
    store_uri: str,
    train: Train,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, weak = train(0.85)
    code, out, err = run_main(
        "models", "register", f"churn/{weak.spec}", MODEL, "--when", GATE, "-u", store_uri
    )
    assert (code, out, err) == (3, f"not registered: the run does not match {GATE}\n", "")
    nothing = "no registered models yet: mltrail models register SOURCE NAME\n"
    assert ok(cli("models", "ls")) == nothing
    result = cli("models", "register", f"churn/{weak.spec}", MODEL, "-w", GATE, "--json")
    assert (result.exit_code, loads(result.stdout)) == (3, {"registered": False, "when": GATE})

    _, good = train(0.92)
    out = ok(
        cli("models", "register", f"churn/{good.spec}", MODEL, "--when", GATE, "--signature", SIG)
    )
    assert out == f"registered {MODEL}@1 (1.0.0) in development from churn/{good.spec}\n"
    out = ok(cli("models", "promote", f"{MODEL}@1", "staging", "--reason", "offline eval ok"))
    assert out == f"{MODEL}@1 (1.0.0): development -> staging\n"
    assert ok(cli("models", "promote", f"{MODEL}@staging", "production")) == (
        f"{MODEL}@1 (1.0.0): staging -> production\n"
    )
    assert ok(cli("models", "promote", f"{MODEL}@1", "production")) == (
        f"{MODEL}@1 (1.0.0) is already in production\n"
    )

    v2 = _register(cli, train, 0.95, "--when", GATE, "--reason", "nightly")
    assert (v2["registered"], v2["spec"], v2["label"], v2["stage"]) == (
        True,
        f"{MODEL}@2",
        "1.1.0",
        "development",
    )
    assert v2["valid"] and v2["signed"] and v2["metadata"]["metrics"]["val_accuracy"] > 0.9
    ok(cli("models", "promote", f"{MODEL}@2", "staging"))
    moved = _data(cli, "promote", f"{MODEL}@2", "production", "-r", "better on holdout")
    assert (moved["outcome"], moved["from_stage"], moved["archived"]) == (
        "promoted",
        "staging",
        [1],
    )
    assert moved["version"]["stage"] == "production"
    assert _stage(cli, 1) == "archived"  # the previous holder of an exclusive stage

    out = ok(cli("models", "ls"))
    assert header(out) == ["name", "latest", "aliases", "stages", "updated"]
    assert [r[:4] for r in rows(out)] == [[MODEL, f"{MODEL}@2 (1.1.0)", "-", "production: 2"]]
    (listed,) = _data(cli, "ls")
    assert (listed["latest_label"], listed["stages"]) == (
        "1.1.0",
        {"archived": [1], "production": [2]},
    )
    assert rows(out)[0][4] == fmt_time(listed["updated_at"])

    out = ok(cli("models", "verify", f"{MODEL}@production"))
    assert out.startswith(f"signature OK: {MODEL}@2 (1.1.0) = churn/churn-model:v2 signed with key")
    dest = tmp_path / "deploy"
    bars: list[tuple[str, int | None, int]] = []

    class Recorder(Transfer):  # the progress bar, counting the bytes it is told about
        def __init__(self, description: str, total: int | None) -> None:
            super().__init__(description, total)
            bars.append((description, total, 0))

        def advance(self, nbytes: int) -> None:
            description, total, done = bars[-1]
            bars[-1] = (description, total, done + nbytes)

    monkeypatch.setattr(models_cli, "Transfer", Recorder)
    assert ok(cli("models", "download", f"{MODEL}@production", "--dest", str(dest))) == f"{dest}\n"
    assert (dest / "model.bin").read_text() == "weights 3 " * 100
    size = sum(f.stat().st_size for f in dest.iterdir())
    assert bars == [(f"downloading {MODEL}@2", size, size)]
    got = _data(cli, "download", f"{MODEL}@1")  # into the shared cache
    assert got["verified"] and Path(got["path"]).is_relative_to(tmp_path / "cache")
    assert (Path(got["path"]) / "model.bin").read_text() == "weights 2 " * 100


def test_aliases_stage_rollback_and_history(
    cli: Invoke, run_main: RunMain, store_uri: str, train: Train
) -> None:
    for accuracy in (0.91, 0.92, 0.93):
        _register(cli, train, accuracy, "--no-sign")
    assert ok(cli("models", "alias", MODEL, "champion", "1")) == (
        f"{MODEL}@champion: new -> {MODEL}@1 (1.0.0)\n"
    )
    assert ok(cli("models", "alias", MODEL, "champion", "1.1.0", "-r", "better")) == (
        f"{MODEL}@champion: version 1 -> {MODEL}@2 (1.1.0)\n"
    )
    got = _data(cli, "alias", MODEL, "champion", "3")
    assert got == {
        "model": MODEL,
        "alias": "champion",
        "from_version": 2,
        "outcome": "moved",
        "to_version": 3,
    }
    assert _data(cli, "alias", MODEL, "champion", "v3")["outcome"] == "unchanged"
    out = ok(cli("models", "rollback", MODEL, "--alias", "champion", "--reason", "regression"))
    assert out == f"{MODEL} alias champion: version 3 -> {MODEL}@2 (1.1.0)\n"
    assert _data(cli, "show", MODEL)["aliases"] == {"champion": 2}

    ok(cli("models", "promote", f"{MODEL}@1", "production"))
    ok(cli("models", "promote", f"{MODEL}@2", "production"))
    back = _data(cli, "rollback", MODEL, "--stage", "production", "-r", "latency spike")
    assert (back["from_versions"], back["version"]["version"]) == ([2], 1)
    assert [_stage(cli, n) for n in (1, 2, 3)] == ["production", "archived", "development"]

    out = ok(cli("models", "alias", MODEL, "champion", "--delete"))
    assert out == f"{MODEL}@champion removed (was version 2)\n"
    assert _data(cli, "alias", MODEL, "champion", "--delete")["outcome"] == "unchanged"
    code, out, err = run_main("models", "show", f"{MODEL}@champion", "-u", store_uri)
    assert code == 4 and err.startswith(f"error: model '{MODEL}' has no version 'champion'")

    events = _data(cli, "history", MODEL)
    steps = [
        (e["action"], e["version"], e["target"], e["from_value"], e["to_value"], e["reason"])
        for e in events
    ]
    assert steps[-10:] == [
        ("alias.set", 1, "champion", None, "1", None),
        ("alias.moved", 2, "champion", "1", "2", "better"),
        ("alias.moved", 3, "champion", "2", "3", None),
        ("alias.moved", 2, "champion", "3", "2", "regression"),
        ("stage.changed", 1, "stage", "development", "production", None),
        ("stage.changed", 2, "stage", "development", "production", None),
        ("stage.changed", 1, "stage", "production", "archived", None),
        ("stage.changed", 2, "stage", "production", "archived", "latency spike"),
        ("stage.changed", 1, "stage", "archived", "production", "latency spike"),
        ("alias.removed", 2, "champion", "2", None, None),
    ]
    assert {e["actor"] for e in events} == {"alice"}
    out = ok(cli("models", "history", MODEL))
    assert header(out) == ["when", "who", "action", "version", "target", "from → to", "reason"]
    table = rows(out)
    assert table[0][1:] == ["alice", "model.created", "-", "-", "- → churn-xgboost", "-"]
    assert table[-2][1:] == [
        "alice",
        "stage.changed",
        "1",
        "stage",
        "archived → production",
        "latency spike",
    ]
    assert table[-1][2:] == ["alias.removed", "2", "champion", "2 → (removed)", "-"]
    whole = ok(cli("models", "history"))
    assert header(whole)[3] == "model" and rows(whole)[0][3] == MODEL


def test_rollback_and_alias_need_one_target(cli: Invoke, train: Train) -> None:
    _register(cli, train, 0.9, "--no-sign")
    for argv in (
        ["rollback", MODEL],
        ["rollback", MODEL, "--stage", "production", "--alias", "champion"],
        ["alias", MODEL, "champion"],
        ["alias", MODEL, "champion", "1", "--delete"],
    ):
        result = cli("models", *argv)
        assert result.exit_code == 2, argv
        assert "exactly one of" in result.output or "either VERSION or --delete" in result.output


def test_card_print_and_edit(cli: Invoke, train: Train, tmp_path: Path) -> None:
    _register(cli, train, 0.93, "--description", "Churn risk")
    ok(cli("models", "alias", MODEL, "champion", "1"))
    card = ok(cli("models", "card", f"{MODEL}@champion", "--raw"))
    assert card.startswith(f"# {MODEL} 1.0.0 (version 1)\n")
    assert "Churn risk" in card and "| val_accuracy | 0.93 |" in card
    shown = ok(cli("models", "card", f"{MODEL}@champion"))  # rendered by Rich
    assert f"{MODEL} 1.0.0 (version 1)" in shown and "# " not in shown
    assert "val_accuracy" in shown and "| val_accuracy |" not in shown

    edited = tmp_path / "card.md"
    edited.write_text(card.replace("_Who should use this model", "Retention team only. _Who"))
    out = ok(cli("models", "card", MODEL, "--edit", str(edited), "--reason", "intended use"))
    assert out == f"updated the card of {MODEL}@1 (1.0.0)\n"
    assert ok(cli("models", "card", f"{MODEL}@1", "--raw")) == edited.read_text()
    assert _data(cli, "card", MODEL) == {
        "model": MODEL,
        "version": 1,
        "label": "1.0.0",
        "card": edited.read_text(),
    }
    last = _data(cli, "history", MODEL)[-1]
    assert (last["action"], last["reason"], last["payload"]["to"]) == (
        "card.updated",
        "intended use",
        edited.read_text(),
    )


def test_approvals_under_a_policy_set_from_the_cli(
    cli: Invoke,
    run_main: RunMain,
    store_uri: str,
    train: Train,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _register(cli, train, 0.92, "--no-sign")
    ok(cli("models", "promote", f"{MODEL}@1", "staging"))
    default = _data(cli, "policy")
    assert default["stages"] == ["development", "staging", "production", "archived"]
    document = {
        "roles": {"alice": ["admin"], "carol": ["maintainer"], "dave": ["maintainer"]},
        "default_roles": ["writer"],
        "protected": {"stage:production": {"roles": ["maintainer"], "approval": True}},
    }
    (tmp_path / "policy.json").write_text(json.dumps(document))
    result = cli("models", "policy", "--set", str(tmp_path / "policy.json"), "-r", "four eyes")
    new = loads(ok(result))
    assert new == {**default, **document}
    assert "policy updated" in result.stderr
    assert _data(cli, "policy") == new
    assert _data(cli, "history")[-1]["action"] == "settings.changed"

    carol: dict[str, str | None] = {"MLTRAIL_USER": "carol"}
    out = ok(cli("models", "promote", f"{MODEL}@1", "production", "-r", "ready", env=carol))
    assert out == (
        f"approval #1 requested ({MODEL} version 1 -> stage production), waiting for a second "
        "person: mltrail models approve 1\n"
    )
    assert _stage(cli, 1) == "staging"  # nothing moved yet
    out = ok(cli("models", "approvals"))
    assert rows(out) == [
        ["#1", MODEL, "1", "stage production", "pending", rows(out)[0][5], "carol", "ready", "-"]
    ]
    assert [a["id"] for a in _data(cli, "show", MODEL)["approvals"]] == [1]

    for user, message in [("carol", "a second person must"), ("bob", "needs one of the roles")]:
        monkeypatch.setenv("MLTRAIL_USER", user)
        code, out, err = run_main("models", "approve", "1", "-u", store_uri)
        assert (code, out) == (9, "") and message in err, err
    monkeypatch.setenv("MLTRAIL_USER", "bob")
    code, _, err = run_main(
        "models", "policy", "--set", str(tmp_path / "policy.json"), "-u", store_uri
    )
    assert code == 9 and "admin" in err

    dave: dict[str, str | None] = {"MLTRAIL_USER": "dave"}
    out = ok(cli("models", "approve", "1", "--reason", "looks good", env=dave))
    assert out == f"approved #1: {MODEL} version 1 -> stage production (requested by carol)\n"
    assert _stage(cli, 1) == "production"
    assert ok(cli("models", "approvals")).strip() == "no pending approval requests"

    _register(cli, train, 0.95, "--no-sign")
    ok(cli("models", "promote", f"{MODEL}@2", "staging", env=carol))
    request = _data(cli, "promote", f"{MODEL}@2", "production", env=carol)
    assert request["outcome"] == "approval_requested" and request["approval"]["id"] == 2
    rejected = _data(cli, "reject", "2", "-r", "not yet", env=carol)
    assert (rejected["status"], rejected["decided_by"]) == ("rejected", "carol")
    assert [(a["id"], a["status"], a["decided_by"]) for a in _data(cli, "approvals", "--all")] == [
        (1, "approved", "dave"),
        (2, "rejected", "carol"),
    ]
    actions = [(e["action"], e["actor"]) for e in _data(cli, "history", MODEL)]
    assert ("approval.requested", "carol") in actions and ("approval.approved", "dave") in actions


def test_validate_verify_and_errors(
    cli: Invoke, run_main: RunMain, store_uri: str, train: Train, tmp_path: Path
) -> None:
    _, art = train(0.9)
    result = cli("models", "register", f"churn/{art.spec}", MODEL, "--no-sign")
    assert ok(result).startswith(f"registered {MODEL}@1 (1.0.0)")
    assert "signature: missing (required)" in result.stderr

    code, out, err = run_main("models", "validate", MODEL, "-u", store_uri)
    assert (code, err) == (1, "")
    assert out.splitlines() == [
        f"{MODEL}@1 (1.0.0): 1 problem",
        "  - signature: missing (required)",
    ]
    code, out, _ = run_main("models", "validate", f"{MODEL}@1", "--json", "-u", store_uri)
    assert code == 1 and loads(out) == {
        "model": MODEL,
        "version": 1,
        "valid": False,
        "problems": ["signature: missing (required)"],
    }
    code, out, err = run_main("models", "promote", f"{MODEL}@1", "production", "-u", store_uri)
    assert (code, out) == (2, "")
    assert "  - signature: missing (required)\n" in err  # each field on its own line

    _register(cli, train, 0.91)
    assert ok(cli("models", "validate", f"{MODEL}@2")) == f"{MODEL}@2 (1.1.0): metadata valid\n"
    assert _data(cli, "verify", f"{MODEL}@2")["verified"] is True

    for argv, want, message in [
        (["show", "nobody-here"], 4, "error: no registered model named 'nobody-here'"),
        (["versions", "nobody-here"], 4, "error: no registered model named 'nobody-here'"),
        (["promote", "nobody-here@1", "staging"], 4, "error: no registered model named"),
        (["promote", f"{MODEL}@7", "staging"], 4, f"error: model '{MODEL}' has no version 7"),
        (["promote", f"{MODEL}@1", "prod"], 2, "error: 'prod' is not a stage of this registry"),
        (["versions", MODEL, "--stage", "prod"], 2, "error: 'prod' is not a stage"),
        (["show", f"{MODEL}@"], 2, f"error: model reference '{MODEL}@' is malformed"),
        (["approve", "42"], 4, "error: no approval request #42"),
        (["verify", f"{MODEL}@1"], 7, "error:"),
        (["download", f"{MODEL}@1"], 7, "error:"),
        (["rollback", MODEL, "--stage", "production"], 5, "nothing to roll back"),
    ]:
        code, out, err = run_main("models", *argv, "-u", store_uri)
        assert (code, out) == (want, ""), (argv, err)
        assert err.startswith(message) or message in err, (argv, err)
        assert "Traceback" not in err
    assert "not signed" in run_main("models", "verify", f"{MODEL}@1", "-u", store_uri)[2]
    unsigned = tmp_path / "unsigned"
    out = ok(cli("models", "download", f"{MODEL}@1", "--no-verify", "-d", str(unsigned)))
    assert out == f"{unsigned}\n" and (unsigned / "model.bin").exists()


def test_register_a_local_folder_with_metadata_from_a_file(
    cli: Invoke, train: Train, tmp_path: Path
) -> None:
    run, _ = train(0.94)
    folder = tmp_path / "exported"
    folder.mkdir()
    (folder / "model.onnx").write_text("onnx bytes")
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps({"license": "mit", "framework": "onnx", "framework_version": "1"}))
    got = _data(
        cli,
        "register",
        str(folder),
        MODEL,
        "--project",
        "churn",
        "--run",
        run.id,
        "--when",
        GATE,
        "--metadata",
        f"@{meta}",
        "--signature",
        SIG,
        "--label",
        "2.0.0",
        "--description",
        "exported",
    )
    assert (got["label"], got["run_id"], got["description"]) == ("2.0.0", run.id, "exported")
    assert got["artifact"] == f"churn/{MODEL}:v0"
    assert got["metadata"]["license"] == "mit" and got["metadata"]["framework"] == "onnx"
    assert got["valid"], got["validation_errors"]
    again = _data(
        cli,
        "register",
        str(folder),
        MODEL,
        "-p",
        "churn",
        "--bump",
        "major",
        "--metadata",
        '{"license": "mit"}',
        "--no-sign",
    )
    assert (again["version"], again["label"], again["run_id"]) == (2, "3.0.0", None)

    result = cli("models", "register", str(folder), MODEL, "--when", GATE)
    assert result.exit_code == 2 and "add --run RUN_ID" in result.output
    result = cli("models", "register", str(folder), MODEL, "--metadata", "[1, 2]")
    assert result.exit_code == 2 and "expected a JSON object" in result.output
    result = cli("models", "register", str(folder), MODEL, "--metadata", "@nope.json")
    assert result.exit_code == 2 and "cannot read nope.json" in result.output

    # every reading command prints JSON with --json
    for argv in (
        ["ls"],
        ["show", MODEL],
        ["show", f"{MODEL}@2.0.0"],
        ["versions", MODEL],
        ["history"],
        ["approvals", "--all"],
        ["card", MODEL],
        ["policy"],
        ["validate", f"{MODEL}@1"],
        ["verify", f"{MODEL}@1"],
    ):
        assert _data(cli, *argv) is not None, argv
    out = ok(cli("models", "show", f"{MODEL}@1"))
    assert "license" in out and "exported" in out
    assert [r[:3] for r in rows(ok(cli("models", "versions", MODEL)))] == [
        ["1", "2.0.0", "development"],
        ["2", "3.0.0", "development"],
    ]


def test_retention_dry_run_then_yes(cli: Invoke, train: Train) -> None:
    kept_run, art = train(0.9)
    lone_run, _ = train(0.8)
    for _ in range(3):
        ok(cli("models", "register", f"churn/{art.spec}", MODEL, "--no-sign"))
    ok(cli("models", "alias", MODEL, "champion", "2"))
    ok(cli("models", "promote", f"{MODEL}@3", "staging"))

    argv = ("retention", "--archive-older-than", "0", "--delete-runs-older-than", "0")
    out = ok(cli("models", *argv))
    lines = out.splitlines()
    assert lines[:2] == ["would archive 1 version", f"  {MODEL}@1"]
    assert f"  {lone_run.id}" in lines and f"  {kept_run.id}" not in lines
    assert lines[-2:] == [
        "kept 1 old runs that model versions come from",
        "run again with --yes to do it",
    ]
    dry = _data(cli, *argv)
    assert dry["dry_run"] and dry["archived_versions"] == [{"model": MODEL, "version": 1}]
    assert _stage(cli, 1) == "development"  # a dry run changes nothing

    done = _data(cli, *argv, "--yes")
    assert not done["dry_run"] and done["deleted_runs"] == dry["deleted_runs"]
    assert _stage(cli, 1) == "archived"
    again = ok(cli("models", "retention", "--archive-older-than", "0", "--yes"))
    assert again.splitlines() == ["archive 0 versions"]
    result = cli("models", "retention")
    assert result.exit_code == 2 and "--archive-older-than" in result.output


def test_as_a_process(store_uri: str, train: Train) -> None:
    _, weak = train(0.5)
    spec = f"churn/{weak.spec}"
    proc = mltrail_process("models", "register", spec, MODEL, "--when", GATE, "-u", store_uri)
    assert (proc.returncode, proc.stdout, proc.stderr) == (
        3,
        f"not registered: the run does not match {GATE}\n",
        "",
    )
    proc = mltrail_process("models", "register", spec, MODEL, "--json", "-u", store_uri)
    assert proc.returncode == 0 and loads(proc.stdout)["spec"] == f"{MODEL}@1"
    proc = mltrail_process("models", "promote", f"{MODEL}@1", "production", "-u", store_uri)
    assert proc.returncode == 2 and proc.stdout == ""
    assert "  - signature: missing (required)" in proc.stderr.splitlines()
    proc = mltrail_process("models", "ls", "--json", MLTRAIL_TRACKING_URI=store_uri)
    assert proc.returncode == 0 and [m["name"] for m in loads(proc.stdout)] == [MODEL]
