"""/api/v1 routes: registry."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
