"""The metadata store behind an mltrail server: ``MLTRAIL_TRACKING_URI=http://host:5000``.

:class:`HttpStore` has the methods of :class:`~mltrail.store.sql.store.SqlStore` that
the client, the runs' writer and the CLI use, each one request to ``/api/v1``. Registry
changes are not store methods here: the server runs the registry's policy checks with
the caller's authenticated roles (see :mod:`mltrail.client.registry`).
"""

from __future__ import annotations

from mltrail.store.http.artifacts import ArtifactsMixin
from mltrail.store.http.credentials import token_for
from mltrail.store.http.registry import RegistryMixin
from mltrail.store.http.sweeps import SweepsMixin
from mltrail.store.http.tracking import TrackingMixin
from mltrail.store.http.transport import Transport

__all__ = ["HttpStore"]


class HttpStore(TrackingMixin, ArtifactsMixin, RegistryMixin, SweepsMixin):
    """A remote store: every call is a request to the server at ``uri``."""

    offline = False
    remote = True

    def __init__(self, uri: str) -> None:
        from mltrail.registry.policy import current_user

        self.uri = uri.rstrip("/")
        self._t = Transport(self.uri, token=token_for(self.uri), user=current_user())

    @property
    def transport(self) -> Transport:
        return self._t

    def close(self) -> None:
        self._t.close()
