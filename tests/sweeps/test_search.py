"""The search itself, as pure functions of config, seed and trials: grid order, random
and Bayesian proposals, hyperband's verdicts, commands, importance."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

from mltrail.entities import Sweep, Trial
from mltrail.sweeps.command import build_command
from mltrail.sweeps.config import parse_config
from mltrail.sweeps.hyperband import stop_reason, thresholds
from mltrail.sweeps.propose import grid_size, propose
from mltrail.sweeps.report import best_trial, importance, ranked


def trial(
    number: int,
    params: dict[str, Any],
    internal: dict[str, Any],
    value: float | None,
    status: str = "finished",
    retry_of: int | None = None,
) -> Trial:
    return Trial(
        "s",
        number,
        f"r{number}",
        status,
        params,
        internal,
        value,
        0,
        retry_of,
        "a",
        0.0,
        0.0,
        1.0,
        1.0,
        2.0,
        None,
    )


def test_grid_visits_every_point_once_then_stops() -> None:
    spec = parse_config(
        {
            "method": "grid",
            "parameters": {
                "opt": {"parameters": {"name": {"values": ["adam", "sgd"]}}},
                "layers": {"distribution": "int_uniform", "min": 1, "max": 3},
                "wd": {"distribution": "q_uniform", "min": 0, "max": 0.2, "q": 0.1},
                "epochs": {"value": 5},
            },
        }
    )
    assert grid_size(spec) == 2 * 3 * 3
    seen: list[Trial] = []
    while (p := propose(spec, 0, seen)) is not None:
        seen.append(trial(len(seen), p.params, p.internal, 1.0))
    points = [(t.params["opt"]["name"], t.params["layers"], t.params["wd"]) for t in seen]
    assert points == list(itertools.product(["adam", "sgd"], [1, 2, 3], [0.0, 0.1, 0.2]))
    assert all(t.params["epochs"] == 5 for t in seen)
    # a retry row is not a new point
    assert propose(spec, 0, [*seen[:3], trial(3, {}, {}, None, "pending", retry_of=0)]) == propose(
        spec, 0, seen[:3]
    )


def test_random_and_bayes_are_reproducible_from_the_stored_trials() -> None:
    for method in ("random", "bayes"):
        spec = parse_config(
            {
                "method": method,
                "metric": {"name": "loss"},
                "run_cap": 5,
                "parameters": {
                    "x": {"min": -1.0, "max": 1.0},
                    "c": {"values": [[1, 2], {"k": "v"}]},
                },
            }
        )
        trials: list[Trial] = []
        for i in range(5):
            first, again = propose(spec, 42, trials), propose(spec, 42, trials)
            assert first == again and first is not None
            assert first.params["c"] in ([1, 2], {"k": "v"})  # any JSON value can be a choice
            trials.append(trial(i, first.params, first.internal, first.params["x"] ** 2))
        assert propose(spec, 42, trials) is None  # run_cap
        assert propose(spec, 43, trials[:2]) != propose(spec, 42, trials[:2])


def _best_of(method: str, seed: int, n: int = 40) -> float:
    """The lowest value of (x - 1.3)^2 + (y + 2.1)^2 found by n trials of ``method``."""
    spec = parse_config(
        {
            "method": method,
            "metric": {"name": "loss", "goal": "minimize"},
            "parameters": {"x": {"min": -5.0, "max": 5.0}, "y": {"min": -5.0, "max": 5.0}},
        }
    )
    trials: list[Trial] = []
    for i in range(n):
        p = propose(spec, seed, trials)
        assert p is not None
        value = (p.params["x"] - 1.3) ** 2 + (p.params["y"] + 2.1) ** 2
        trials.append(trial(i, p.params, p.internal, value))
    return min(t.value for t in trials if t.value is not None)


def test_bayes_gets_closer_than_random_on_a_quadratic() -> None:
    wins = [_best_of("bayes", seed) < _best_of("random", seed) for seed in range(10)]
    assert sum(wins) >= 8, wins


def test_bayes_learns_from_running_stopped_and_failed_trials_without_breaking() -> None:
    spec = parse_config(
        {
            "method": "bayes",
            "metric": {"name": "acc", "goal": "maximize"},
            "parameters": {
                "lr": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1.0},
                "bs": {"values": [16, 32]},
            },
        }
    )
    trials = []
    for i, status in enumerate(["finished"] * 11 + ["stopped", "failed", "running", "crashed"]):
        p = propose(spec, 1, trials)
        assert p is not None
        trials.append(trial(i, p.params, p.internal, 0.5 if status != "failed" else None, status))
    trials.append(trial(99, {}, {"lr": "not a number"}, 1.0))  # foreign rows are skipped
    p = propose(spec, 1, trials)
    assert p is not None and 1e-4 <= p.params["lr"] <= 1.0


def test_hyperband_stops_a_trial_worse_than_the_best_third() -> None:
    hb = parse_config(
        {
            "method": "random",
            "metric": {"name": "loss"},
            "parameters": {"a": {"value": 1}},
            "early_terminate": {"type": "hyperband", "min_iter": 3},
        }
    ).early_terminate
    assert hb is not None and hb.bands[:3] == (3, 9, 27)
    good = [1.0 / (i + 1) for i in range(30)]
    bad = [10.0 - i * 0.01 for i in range(5)]
    assert thresholds(hb, [good, bad])[:2] == [good[3], good[9]]
    reason = stop_reason(hb, bad, [good, bad], "loss")
    assert reason is not None and "iteration 4" in reason
    assert stop_reason(hb, bad[:3], [good, bad[:3]], "loss") is None  # no band reached yet
    assert stop_reason(hb, good, [good, bad], "loss") is None
    hb2 = parse_config(
        {
            "method": "random",
            "metric": {"name": "l"},
            "parameters": {"a": {"value": 1}},
            "early_terminate": {"type": "hyperband", "max_iter": 27, "s": 2},
        }
    )
    assert hb2.early_terminate is not None and hb2.early_terminate.bands == (3, 9)


def test_program_commands_expand_w_and_b_macros(tmp_path: Path) -> None:
    params = {"lr": 0.01, "opt": {"name": "adam"}, "aug": True, "off": False, "dims": [2, 3]}
    spec = parse_config(
        {"method": "random", "program": "train.py", "parameters": {"lr": {"value": 0.01}}}
    )
    argv = build_command(spec, params, tmp_path / "a.json")
    assert argv[0] == "/usr/bin/env" and argv[2] == "train.py"
    assert argv[3:] == [
        "--lr=0.01",
        "--opt.name=adam",
        "--aug=True",
        "--off=False",
        "--dims=[2, 3]",
    ]
    spec = parse_config(
        {
            "method": "random",
            "program": "t.py",
            "parameters": {"lr": {"value": 1}},
            "command": [
                "python",
                "${program}",
                "${args_no_hyphens}",
                "--cfg",
                "${args_json}",
                "${args_json_file}",
                "${args_no_boolean_flags}",
            ],
        }
    )
    argv = build_command(spec, params, tmp_path / "a.json")
    assert argv[:3] == ["python", "t.py", "lr=0.01"]
    assert json.loads(argv[argv.index("--cfg") + 1]) == params
    assert json.loads((tmp_path / "a.json").read_text()) == params
    assert argv[-4:] == ["--lr=0.01", "--opt.name=adam", "--aug", "--dims=[2, 3]"]


def test_ranking_best_and_importance() -> None:
    sweep = Sweep(
        "s", "p", "n", "random", "acc", "maximize", "running", {}, 0, None, 1, None, 0.0, 0.0
    )
    trials = [
        trial(i, {"lr": lr, "opt": opt, "k": 1}, {}, acc)
        for i, (lr, opt, acc) in enumerate(
            [(0.1, "a", 0.9), (0.01, "b", 0.5), (0.05, "a", 0.7), (0.001, "b", 0.2)]
        )
    ]
    trials += [trial(4, {"lr": 0.2}, {}, 0.99, "stopped"), trial(5, {}, {}, None, "failed")]
    order = [t.number for t in ranked(sweep, trials)]
    assert order == [0, 2, 1, 3, 4, 5]
    best = best_trial(sweep, trials)
    assert best is not None and best.number == 0
    weights = {w.param: w for w in importance(sweep, trials)}
    assert set(weights) == {"lr", "opt"}  # k never varied
    assert weights["lr"].importance == 1.0 and weights["lr"].correlation == 1.0
    assert 0.5 < weights["opt"].importance < 1 and weights["opt"].correlation is None
    assert importance(sweep, trials[:2]) == []
