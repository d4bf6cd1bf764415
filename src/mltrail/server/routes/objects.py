"""/api/v1 routes: objects."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
