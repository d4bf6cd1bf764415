"""API tokens: created once, shown once, stored only as a hash (the auth issue's part)."""

from __future__ import annotations

from typing import Any

from mltrail.server.auth import Principal

__all__ = ["principal_for_token"]


def principal_for_token(store: Any, token: str) -> Principal | None:
    """The user a token belongs to, with their roles; None for an unknown token."""
    return None  # no tokens exist until users and tokens are stored
