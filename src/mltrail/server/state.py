"""What one server process keeps: its settings and open pools, nothing else."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from mltrail.server.config import ServerConfig

if TYPE_CHECKING:
    from mltrail.objects import ObjectStore

__all__ = ["ServerState"]


class ServerState:
    """The stores a server serves, opened on first use (``app.state.mltrail``)."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._store: Any = None
        self._objects: ObjectStore | None = None

    @property
    def store(self) -> Any:
        """The metadata store (a :class:`~mltrail.store.sql.store.SqlStore`)."""
        if self._store is None:
            from mltrail.store import open_store

            with self._lock:
                if self._store is None:
                    self._store = open_store(self.config.store_uri)
        return self._store

    @property
    def objects(self) -> ObjectStore:
        if self._objects is None:
            from mltrail.objects import open_object_store

            with self._lock:
                if self._objects is None:
                    self._objects = open_object_store(self.config.objects_uri)
                    from mltrail.artifacts.ops import register_store

                    register_store(self._objects, self.config.store_uri)
        return self._objects

    def registry(self, principal: Any) -> Any:
        """The registry service acting as ``principal`` (policy checks run here)."""
        from mltrail.registry.service import Registry

        return Registry(
            self.store,
            lambda: self.objects,
            actor=principal.name,
            roles=principal.registry_roles(),
        )

    def close(self) -> None:
        from mltrail.store import close_all

        close_all()
