"""DVC's templating in pipeline files: ``vars``, ``${...}``, ``foreach``/``do``, ``matrix``."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mltrail.pipelines import PipelineError, load_pipeline, plan, repro
from tests.pipelines.test_pipelines import _quiet_runs, ran, write

__all__ = ["_quiet_runs"]


def pipeline_file(root: Path, doc: dict[str, object]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "dvc.yaml").write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return root


def test_vars_and_params_fill_commands_and_params_yaml_keys_become_params(
    tmp_path: Path,
) -> None:
    root = tmp_path / "p"
    write(root / "params.yaml", "train:\n  lr: 0.1\n  layers: [8, 4]\nseed: 7\n")
    write(root / "paths.yaml", "data_dir: data\nunused: 1\n")
    write(root / "data/in.txt", "x\n")
    doc = {
        "vars": ["paths.yaml:data_dir", {"out_name": "model.txt"}],
        "stages": {
            "train": {
                "cmd": "echo train >> ran.log && echo ${train.lr} ${train.layers[0]}"
                " \\${HOME} > ${out_name}",
                "deps": ["${data_dir}/in.txt"],
                "outs": ["${out_name}"],
                "params": ["seed"],
            }
        },
    }
    stage = load_pipeline(pipeline_file(root, doc)).stages["train"]
    assert stage.cmd == "echo train >> ran.log && echo 0.1 8 ${HOME} > model.txt"
    assert stage.deps == ("data/in.txt",) and stage.outs == ("model.txt",)
    assert stage.params == (
        ("params.yaml", "seed"),
        ("params.yaml", "train.layers"),
        ("params.yaml", "train.lr"),
    )
    repro(load_pipeline(root), record=False)
    assert (root / "model.txt").read_text().split()[:2] == ["0.1", "8"]
    assert ran(root) == ["train"]
    write(root / "params.yaml", "train:\n  lr: 0.5\n  layers: [8, 4]\nseed: 7\n")
    assert plan(load_pipeline(root)).reasons["train"][0] == "cmd changed"


def test_foreach_list_and_mapping_make_one_stage_per_item(tmp_path: Path) -> None:
    root = tmp_path / "p"
    write(root / "params.yaml", "models:\n  small: {width: 8}\n  large: {width: 64}\n")
    doc = {
        "stages": {
            "split": {
                "foreach": ["train", "test"],
                "do": {"cmd": "echo ${item} >> ran.log && echo ${item} > ${item}.txt",
                       "outs": ["${item}.txt"]},
            },
            "fit": {
                "foreach": "${models}",
                "do": {
                    "cmd": "echo fit-${key} >> ran.log && echo ${item.width} > ${key}.model",
                    "deps": ["train.txt"],
                    "outs": ["${key}.model"],
                },
            },
        }
    }  # fmt: skip
    pipeline = load_pipeline(pipeline_file(root, doc))
    assert list(pipeline.stages) == ["split@train", "split@test", "fit@small", "fit@large"]
    assert pipeline.stages["fit@large"].cmd.endswith("echo 64 > large.model")
    result = repro(pipeline, record=False)
    assert sorted(result.ran) == ["fit@large", "fit@small", "split@test", "split@train"]
    assert (root / "large.model").read_text() == "64\n"
    assert sorted(ran(root)) == ["fit-large", "fit-small", "test", "train"]
    assert repro(load_pipeline(root), "fit@small", record=False).ran == []


def test_matrix_makes_every_combination(tmp_path: Path) -> None:
    root = tmp_path / "p"
    doc = {
        "stages": {
            "train": {
                "matrix": {"model": ["cnn", "mlp"], "lr": [0.1, 0.01]},
                "cmd": "echo ${item.model} ${item.lr} > ${item.model}-${item.lr}.out",
                "outs": ["${item.model}-${item.lr}.out"],
            }
        }
    }
    pipeline = load_pipeline(pipeline_file(root, doc))
    assert list(pipeline.stages) == [
        "train@cnn-0.1",
        "train@cnn-0.01",
        "train@mlp-0.1",
        "train@mlp-0.01",
    ]
    repro(pipeline, jobs=2, record=False)
    assert (root / "mlp-0.01.out").read_text() == "mlp 0.01\n"


@pytest.mark.parametrize(
    ("stages", "message"),
    [
        ({"a": {"cmd": "echo ${nope.x}"}}, "${nope.x} is not defined"),
        ({"a": {"foreach": [1, 2]}}, "foreach needs 'do'"),
        ({"a": {"foreach": 3, "do": {"cmd": "x"}}}, "foreach must be a list or a mapping"),
        ({"a": {"matrix": {"x": []}, "cmd": "x"}}, "matrix must map names to non-empty lists"),
        ({"a": {"cmd": "echo ${d}"}}, "cannot put a dict inside a string"),
        ({"a@b": {"cmd": "x"}}, "bad stage name"),
    ],
)
def test_template_mistakes_are_clear_errors(
    tmp_path: Path, stages: dict[str, object], message: str
) -> None:
    root = pipeline_file(tmp_path / "p", {"vars": [{"d": {"k": 1}}], "stages": stages})
    with pytest.raises(PipelineError) as info:
        load_pipeline(root)
    assert message in info.value.message
