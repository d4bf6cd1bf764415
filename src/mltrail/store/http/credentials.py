"""Where the remote client finds its API token: ``MLTRAIL_TOKEN``, else the user's
credentials file written by ``mltrail login`` (the auth issue's part)."""

from __future__ import annotations

import os

__all__ = ["token_for"]


def token_for(base_url: str) -> str | None:
    return os.environ.get("MLTRAIL_TOKEN") or None
