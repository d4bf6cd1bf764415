"""MLflow's REST API (``/api/2.0/mlflow/...``) over our stores."""

from __future__ import annotations

from fastapi import APIRouter

__all__ = ["router"]

router = APIRouter()
