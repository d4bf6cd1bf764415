"""MLflow's artifact proxy (``/api/2.0/mlflow-artifacts/...``)."""

from __future__ import annotations

from fastapi import APIRouter

__all__ = ["router"]

router = APIRouter()
