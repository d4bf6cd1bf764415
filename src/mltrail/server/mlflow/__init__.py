"""MLflow's REST API (``/api/2.0/mlflow/...``) over our stores.

Existing MLflow code points ``MLFLOW_TRACKING_URI`` at an mltrail server and works
unchanged: experiments are projects, runs are runs, the registry is ours, artifacts go
through the proxy (:mod:`.artifacts`) into our object store. Errors are MLflow's error
JSON (:class:`~mltrail.server.mlflow.common.MlflowRoute`).
"""

from __future__ import annotations

from fastapi import APIRouter

from mltrail.server.mlflow import experiments, models, runs
from mltrail.server.mlflow.common import MlflowRoute

__all__ = ["router"]

router = APIRouter(route_class=MlflowRoute)
router.include_router(experiments.router)
router.include_router(runs.router)
router.include_router(models.router)
