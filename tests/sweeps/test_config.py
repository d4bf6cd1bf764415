"""W&B's sweep configuration is accepted as it is; a bad one says which key and how to fix it."""

from __future__ import annotations

import math
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from mltrail.errors import SweepConfigError
from mltrail.sweeps.config import DISTRIBUTIONS, load_config, parse_config
from mltrail.sweeps.space import random_internal, value_of

ISSUE_CONFIG = {  # the issue's example, as a W&B user writes it
    "method": "bayes",
    "metric": {"goal": "maximize", "name": "val_accuracy"},
    "parameters": {
        "learning_rate": {"min": 1e-5, "max": 1e-2, "distribution": "log_uniform"},
        "batch_size": {"values": [16, 32, 64, 128]},
        "optimizer": {"values": ["adam", "sgd"]},
    },
}


def test_the_issue_config_is_read_as_w_and_b_reads_it() -> None:
    spec = parse_config(ISSUE_CONFIG)
    assert (spec.method, spec.metric, spec.goal) == ("bayes", "val_accuracy", "maximize")
    kinds = {p.path: p.kind for p in spec.params}
    assert kinds == {
        "learning_rate": "log_uniform",
        "batch_size": "categorical",
        "optimizer": "categorical",
    }
    assert spec.max_retries == 1 and spec.run_cap is None and spec.early_terminate is None


def test_everything_w_and_b_documents_parses() -> None:
    spec = parse_config(
        {
            "method": "random",
            "name": "full",
            "description": "d",
            "program": "train.py",
            "project": "p",
            "entity": "me",
            "run_cap": 30,
            "seed": 7,
            "max_retries": 0,
            "command": ["${env}", "${interpreter}", "${program}", "${args_no_hyphens}"],
            "metric": {"name": "loss", "goal": "minimize", "target": 0.1},
            "early_terminate": {"type": "hyperband", "min_iter": 3, "eta": 2, "strict": True},
            "parameters": {
                "epochs": {"value": 10},
                "layers": {"min": 1, "max": 4},
                "dropout": {"min": 0.0, "max": 0.5},
                "lr": {"distribution": "log_uniform_values", "min": "1e-5", "max": 1e-2},
                "optimizer": {
                    "parameters": {
                        "name": {"values": ["adam", "sgd"], "probabilities": [0.7, 0.3]},
                        "momentum": {"distribution": "normal", "mu": 0.9, "sigma": 0.02},
                    }
                },
            },
        }
    )
    assert [p.path for p in spec.params] == [
        "epochs",
        "layers",
        "dropout",
        "lr",
        "optimizer.name",
        "optimizer.momentum",
    ]
    kinds = [p.kind for p in spec.params]
    assert kinds == [
        "constant",
        "int_uniform",
        "uniform",
        "log_uniform_values",
        "categorical",
        "normal",
    ]
    assert spec.params[3].min == 1e-5  # YAML 1.1 reads 1e-5 as a string: still a number
    assert spec.early_terminate is not None and spec.early_terminate.bands[:3] == (3, 6, 12)
    assert (spec.run_cap, spec.seed, spec.max_retries, spec.target) == (30, 7, 0, 0.1)
    assert spec.searched[0].path == "layers"


@pytest.mark.parametrize(
    ("config", "where", "fix"),
    [
        ({"parameters": {"a": {"value": 1}}}, "method", "set method"),
        ({"method": "grd", "parameters": {"a": {"value": 1}}}, "method", "did you mean 'grid'"),
        ({"method": "random"}, "parameters", "e.g. parameters"),
        ({"method": "random", "paramters": {}}, "paramters", "did you mean 'parameters'"),
        (
            {"method": "bayes", "parameters": {"a": {"min": 0.0, "max": 1.0}}},
            "metric",
            "add metric",
        ),
        (
            {"method": "random", "parameters": {"lr": {"min": 0.1, "max": 0.01}}},
            "parameters.lr.min",
            "swap min and max",
        ),
        (
            {
                "method": "random",
                "parameters": {"lr": {"distribution": "log_unifrom", "min": 1, "max": 2}},
            },
            "parameters.lr.distribution",
            "did you mean 'log_uniform'",
        ),
        (
            {
                "method": "random",
                "parameters": {"lr": {"distribution": "log_uniform_values", "min": 0, "max": 1}},
            },
            "parameters.lr.min",
            "for exponents use log_uniform",
        ),
        (
            {"method": "random", "parameters": {"lr": {"min": 1, "max": 2, "values": [1]}}},
            "parameters.lr.max",
            "categorical takes",
        ),
        (
            {
                "method": "random",
                "parameters": {"n": {"distribution": "int_uniform", "min": 1.5, "max": 3}},
            },
            "parameters.n.min",
            "give an integer",
        ),
        (
            {"method": "random", "parameters": {"b": {"values": []}}},
            "parameters.b.values",
            "values: [16, 32]",
        ),
        (
            {
                "method": "random",
                "parameters": {"b": {"values": [1, 2], "probabilities": [0.9, 0.3]}},
            },
            "parameters.b.probabilities",
            "fix the numbers",
        ),
        ({"method": "random", "parameters": {"b": {}}}, "parameters.b", "min: 0.0001"),
        (
            {"method": "random", "parameters": {"a.b": {"value": 1}}},
            "parameters.a.b",
            "nest with parameters",
        ),
        (
            {
                "method": "random",
                "parameters": {"o": {"parameters": {"x": {"value": 1}}, "value": 2}},
            },
            "parameters.o",
            "move the other keys",
        ),
        (
            {"method": "grid", "parameters": {"lr": {"min": 0.1, "max": 1.0}}},
            "parameters.lr",
            "give values",
        ),
        (
            {
                "method": "random",
                "metric": {"name": "l", "goal": "up"},
                "parameters": {"a": {"value": 1}},
            },
            "metric.goal",
            "pick one",
        ),
        (
            {
                "method": "random",
                "metric": {"name": "l"},
                "early_terminate": {"type": "hyperband"},
                "parameters": {"a": {"value": 1}},
            },
            "early_terminate",
            "min_iter: 3",
        ),
        (
            {
                "method": "random",
                "early_terminate": {"type": "hyperband", "min_iter": 3},
                "parameters": {"a": {"value": 1}},
            },
            "early_terminate",
            "add metric",
        ),
        (
            {"method": "random", "run_cap": 0, "parameters": {"a": {"value": 1}}},
            "run_cap",
            "run_cap: 1",
        ),
        (
            {
                "method": "random",
                "program": "t.py",
                "command": ["${interpreter}", "${prog}"],
                "parameters": {"a": {"value": 1}},
            },
            "command",
            "did you mean 'program'",
        ),
        (
            {
                "method": "random",
                "command": ["python", "${program}"],
                "parameters": {"a": {"value": 1}},
            },
            "command",
            "add program",
        ),
    ],
)
def test_a_bad_config_names_the_key_and_the_fix(
    config: dict[str, Any], where: str, fix: str
) -> None:
    with pytest.raises(SweepConfigError) as info:
        parse_config(config)
    assert f"sweep config: {where}:" in info.value.message
    assert fix in (info.value.hint or "")
    assert info.value.http_status == 400 and info.value.code == "sweep_config_error"


def test_a_config_file_is_yaml_or_json(tmp_path: Path) -> None:
    yml = tmp_path / "sweep.yaml"
    yml.write_text("method: random\nparameters:\n  lr:\n    min: 1e-5\n    max: 1e-2\n")
    assert parse_config(load_config(yml)).params[0].min == 1e-5
    with pytest.raises(SweepConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just\n- a list\n")
    with pytest.raises(SweepConfigError, match="does not hold a mapping"):
        load_config(bad)


def _draws(spec: dict[str, Any], n: int = 2000) -> list[Any]:
    (param,) = parse_config({"method": "random", "parameters": {"p": spec}}).params
    rng = random.Random(1)
    return [value_of(param, random_internal(param, rng)) for _ in range(n)]


def test_each_distribution_draws_what_w_and_b_draws() -> None:
    e = math.e
    lu = _draws({"distribution": "log_uniform", "min": -5, "max": 0})  # exponents
    assert all(e**-5 <= v <= 1 for v in lu) and min(lu) < 0.02 and max(lu) > 0.5
    luv = _draws({"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-1})
    assert all(1e-4 <= v <= 1e-1 for v in luv)
    assert sum(v < 1e-3 for v in luv) / len(luv) == pytest.approx(1 / 3, abs=0.05)  # log-even
    ilu = _draws({"distribution": "inv_log_uniform_values", "min": 0.01, "max": 1})
    assert all(0.01 <= v <= 1 for v in ilu)
    il = _draws({"distribution": "inv_log_uniform", "min": 0, "max": 2})
    assert all(e**-2 <= v <= 1 for v in il)
    qu = _draws({"distribution": "q_uniform", "min": 0, "max": 1, "q": 0.25})
    assert set(qu) <= {0.0, 0.25, 0.5, 0.75, 1.0} and len(set(qu)) == 5
    qi = _draws({"distribution": "q_uniform", "min": 0, "max": 100, "q": 10})
    assert all(isinstance(v, int) and v % 10 == 0 for v in qi)
    qlv = _draws({"distribution": "q_log_uniform_values", "min": 1, "max": 1000, "q": 1})
    assert all(isinstance(v, int) and 1 <= v <= 1000 for v in qlv)
    iu = _draws({"min": 2, "max": 5})
    assert set(iu) == {2, 3, 4, 5}
    normal = _draws({"distribution": "normal", "mu": 3, "sigma": 0.5})
    mean = sum(normal) / len(normal)
    sd = math.sqrt(sum((v - mean) ** 2 for v in normal) / len(normal))
    assert mean == pytest.approx(3, abs=0.05) and sd == pytest.approx(0.5, abs=0.05)
    ln = _draws({"distribution": "log_normal", "mu": 0, "sigma": 1})
    assert all(v > 0 for v in ln)
    qn = _draws({"distribution": "q_normal", "mu": 0, "sigma": 3, "q": 2})
    assert all(v % 2 == 0 for v in qn)
    beta = _draws({"distribution": "beta", "a": 2, "b": 5})
    assert all(0 <= v <= 1 for v in beta) and sum(beta) / len(beta) == pytest.approx(
        2 / 7, abs=0.03
    )
    cat = Counter(_draws({"values": ["a", "b"], "probabilities": [0.8, 0.2]}))
    assert cat["a"] / 2000 == pytest.approx(0.8, abs=0.04)
    assert _draws({"value": [1, 2]}, 3) == [[1, 2]] * 3
    assert set(DISTRIBUTIONS) >= {
        "uniform",
        "int_uniform",
        "log_uniform",
        "log_uniform_values",
        "normal",
        "q_uniform",
        "categorical",
        "q_log_uniform_values",
        "inv_log_uniform_values",
    }
