"""The remote store's artifact methods (over :class:`~mltrail.store.http.transport.Transport`).

The names and arguments of :class:`~mltrail.store.sql.artifacts.ArtifactStoreMixin`, so
``Run.log_artifact``, ``Run.use_artifact`` and ``Client``'s artifact methods run
unchanged against a server; plus :meth:`ArtifactsMixin.lineage` and
:meth:`ArtifactsMixin.artifact_manifest`, answered by the server in one request.
The files themselves go through :class:`~mltrail.objects.http.HttpObjectStore`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from mltrail.entities import AliasEvent, ArtifactVersion, LineageNode, ManifestEntry
from mltrail.errors import ConfigurationError
from mltrail.store.http.transport import Transport
from mltrail.wire import from_wire

__all__ = ["ArtifactsMixin", "artifact_path", "ref_text"]


def ref_text(ref: int | str | None) -> str:
    """A version reference as it goes in a path: ``latest``, ``vN`` or an alias."""
    if ref is None:
        return "latest"
    if isinstance(ref, int):
        return f"v{ref}"
    return quote(ref, safe="")


def artifact_path(name: str) -> str:
    """``/artifacts/NAME`` for a valid artifact name (no '/', '..', ...)."""
    from mltrail.artifacts.names import validate_name

    return "/artifacts/" + quote(validate_name(name), safe="")


def _versions(data: Any) -> list[ArtifactVersion]:
    return [from_wire(ArtifactVersion, v) for v in data]


class ArtifactsMixin:
    _t: Transport

    def create_artifact_version(
        self,
        *,
        project: str,
        name: str,
        type: str,
        digest: str,
        size: int,
        file_count: int,
        metadata: Mapping[str, Any],
        run_id: str | None,
        reference: bool,
        aliases: tuple[str, ...] = (),
        actor: str | None = None,
    ) -> ArtifactVersion:
        """Record a version; the server refuses it unless its objects are all stored."""
        body = {
            "project": project, "name": name, "type": type, "digest": digest, "size": size,
            "file_count": file_count, "metadata": dict(metadata), "run_id": run_id,
            "reference": reference, "aliases": list(aliases),
        }  # fmt: skip
        headers = {"X-Mltrail-User": actor} if actor else None
        data = self._t.call("POST", "/artifacts", json=body, headers=headers)
        return from_wire(ArtifactVersion, data)

    def get_artifact_version(
        self, project: str, name: str, ref: int | str | None = None
    ) -> ArtifactVersion:
        path = f"{artifact_path(name)}/versions/{ref_text(ref)}"
        return from_wire(ArtifactVersion, self._t.call("GET", path, params={"project": project}))

    def artifact_versions(self, project: str, name: str) -> list[ArtifactVersion]:
        path = f"{artifact_path(name)}/versions"
        return _versions(self._t.call("GET", path, params={"project": project}))

    def list_artifacts(
        self, project: str | None = None, type: str | None = None
    ) -> list[ArtifactVersion]:
        return _versions(self._t.call("GET", "/artifacts", params={"project": project,
                                                                   "type": type}))  # fmt: skip

    def search_artifacts(
        self, project: str | None = None, query: str | None = None, *, limit: int = 1000
    ) -> list[ArtifactVersion]:
        params = {"project": project, "query": query, "limit": limit}
        return _versions(self._t.call("GET", "/artifacts:search", params=params))

    def artifact_manifest(
        self, project: str, name: str, ref: int | str | None = None
    ) -> list[ManifestEntry]:
        """The files of a version, read by the server."""
        path = f"{artifact_path(name)}/versions/{ref_text(ref)}/manifest"
        data = self._t.call("GET", path, params={"project": project})
        return [from_wire(ManifestEntry, e) for e in data]

    def set_alias(
        self,
        project: str,
        name: str,
        alias: str,
        version: int | None,
        *,
        actor: str | None = None,
        reason: str | None = None,
    ) -> None:
        path = f"{artifact_path(name)}/aliases/{quote(alias, safe='')}"
        headers = {"X-Mltrail-User": actor} if actor else None
        self._t.call("PUT", path, json={"version": version, "reason": reason},
                     params={"project": project}, headers=headers)  # fmt: skip

    def alias_history(self, project: str, name: str) -> list[AliasEvent]:
        path = f"{artifact_path(name)}/alias-history"
        return [
            from_wire(AliasEvent, e) for e in self._t.call("GET", path, params={"project": project})
        ]

    def add_run_input(self, run_id: str, project: str, name: str, version: int) -> None:
        body = {"project": project, "name": name, "version": version}
        self._t.call("POST", f"/runs/{quote(run_id, safe='')}/inputs", json=body)

    def run_artifacts(self, run_id: str) -> dict[str, list[ArtifactVersion]]:
        """``{"in": [...], "out": [...]}`` for a run."""
        data = self._t.call("GET", f"/runs/{quote(run_id, safe='')}/artifacts")
        return {"in": _versions(data["in"]), "out": _versions(data["out"])}

    def artifact_runs(self, project: str, name: str, version: int) -> dict[str, list[str]]:
        path = f"{artifact_path(name)}/versions/v{int(version)}/runs"
        data = self._t.call("GET", path, params={"project": project})
        return {"in": list(data["in"]), "out": list(data["out"])}

    def lineage(
        self, target: str, direction: str = "up", depth: int = 3, project: str | None = None
    ) -> LineageNode:
        """The lineage tree around ``target``, built by the server in one request."""
        params = {"target": target, "direction": direction, "depth": depth, "project": project}
        return from_wire(LineageNode, self._t.call("GET", "/lineage", params=params))

    def all_manifest_digests(self) -> set[str]:
        """Refused: garbage collection runs on the server host, not through the API."""
        raise ConfigurationError(
            "garbage collection of a server's objects runs on the server host",
            hint="run `mltrail gc --uri STORE_URI` there, with MLTRAIL_OBJECTS set to the "
            "server's --objects",
        )
