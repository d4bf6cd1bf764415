"""The remote store's tracking methods (over :class:`~mltrail.store.http.transport.Transport`)."""

from __future__ import annotations

from mltrail.store.http.transport import Transport


class TrackingMixin:
    _t: Transport
