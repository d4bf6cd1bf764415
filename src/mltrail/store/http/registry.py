"""The remote store's registry methods (over :class:`~mltrail.store.http.transport.Transport`)."""

from __future__ import annotations

from mltrail.store.http.transport import Transport


class RegistryMixin:
    _t: Transport
