"""The API's routers, one module per area; :func:`include_routes` mounts them all."""

from __future__ import annotations

from fastapi import FastAPI

__all__ = ["include_routes"]


def include_routes(app: FastAPI) -> None:
    from mltrail.server.app import API
    from mltrail.server.mlflow import router as mlflow_router
    from mltrail.server.mlflow.artifacts import router as mlflow_artifacts_router
    from mltrail.server.routes import admin, artifacts, objects, registry, sweeps, tracking, views

    app.include_router(tracking.router, prefix=API, tags=["tracking"])
    app.include_router(views.router, prefix=API, tags=["views"])
    app.include_router(artifacts.router, prefix=API, tags=["artifacts"])
    app.include_router(objects.router, prefix=API, tags=["objects"])
    app.include_router(registry.router, prefix=API, tags=["registry"])
    app.include_router(admin.router, prefix=API, tags=["auth"])
    app.include_router(sweeps.router, prefix=API, tags=["sweeps"])
    app.include_router(mlflow_router, prefix="/api/2.0/mlflow", tags=["mlflow"])
    app.include_router(mlflow_artifacts_router, prefix="/api/2.0/mlflow-artifacts", tags=["mlflow"])
