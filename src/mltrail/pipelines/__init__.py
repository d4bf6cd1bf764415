"""Pipelines: stages in ``mltrail.yaml``/``dvc.yaml`` re-run when their inputs change."""

from __future__ import annotations

from mltrail.pipelines.dag import build_dag, render_dot, render_mermaid, topo_order
from mltrail.pipelines.repro import ReproResult, StageFailed, plan, repro
from mltrail.pipelines.spec import Pipeline, PipelineError, Stage, load_pipeline

__all__ = [
    "Pipeline",
    "PipelineError",
    "ReproResult",
    "Stage",
    "StageFailed",
    "build_dag",
    "load_pipeline",
    "plan",
    "render_dot",
    "render_mermaid",
    "repro",
    "topo_order",
]
