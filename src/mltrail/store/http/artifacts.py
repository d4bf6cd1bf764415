"""The remote store's artifacts methods (over :class:`~mltrail.store.http.transport.Transport`)."""

from __future__ import annotations

from mltrail.store.http.transport import Transport


class ArtifactsMixin:
    _t: Transport
