"""The objects of an mltrail server, reached through its API (the objects issue's part)."""

from __future__ import annotations

__all__ = ["HttpObjectStore"]


class HttpObjectStore:
    def __init__(self, uri: str) -> None:
        self._uri = uri.rstrip("/")

    @property
    def uri(self) -> str:
        return self._uri
