"""Artifact metadata in SQL: versions, aliases (with their history), lineage edges.

The bytes are elsewhere: a version row holds the object id of its manifest, which lives
in the object store with the files it lists. ``latest`` is not stored: it is always the
highest version.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select

from mltrail.entities import AliasEvent, ArtifactVersion
from mltrail.errors import ArtifactNotFound, InvalidValueError
from mltrail.store.sql import schema as s

__all__ = ["ArtifactStoreMixin"]

_A = s.artifacts.c
_V = s.artifact_versions.c
_L = s.artifact_aliases.c


class ArtifactStoreMixin:
    """Artifact methods of :class:`~mltrail.store.sql.store.SqlStore`."""

    # provided by SqlStore
    _write: Any
    _read: Any
    _project: Any
    _insert_ignore: Any

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
        """Add a version, unless its manifest equals the latest one (then reuse that)."""
        with self._write() as conn:
            proj = self._project(conn, project, create=True)
            conn.execute(
                self._insert_ignore(s.artifacts, ["project_id", "name"]),
                [{"project_id": proj.id, "name": name, "type": type, "created_at": time.time()}],
            )
            art = conn.execute(
                select(s.artifacts).where((_A.project_id == proj.id) & (_A.name == name))
            ).one()
            if art.type != type:
                raise InvalidValueError(
                    f"artifact {name!r} has type {art.type!r}, not {type!r}",
                    hint="use another name, or the same type",
                )
            latest = conn.execute(
                select(s.artifact_versions)
                .where(_V.artifact_id == art.id)
                .order_by(_V.version.desc())
                .limit(1)
            ).first()
            if latest is not None and latest.digest == digest:
                version, version_id = int(latest.version), int(latest.id)
            else:
                version = 0 if latest is None else int(latest.version) + 1
                version_id = conn.execute(
                    insert(s.artifact_versions)
                    .values(
                        artifact_id=art.id,
                        version=version,
                        digest=digest,
                        size=size,
                        file_count=file_count,
                        metadata_json=json.dumps(dict(metadata), default=str),
                        run_id=run_id,
                        reference=reference,
                        created_at=time.time(),
                    )
                    .returning(_V.id)
                ).scalar_one()
            if run_id is not None:
                self._edge(conn, run_id, version_id, "out")
            for alias in aliases:
                self._move_alias(conn, art.id, alias, version, actor, None)
        return self.get_artifact_version(project, name, version)

    def _edge(self, conn: Connection, run_id: str, version_id: int, direction: str) -> None:
        conn.execute(
            self._insert_ignore(s.run_edges, ["run_id", "version_id", "direction"]),
            [{"run_id": run_id, "version_id": version_id, "direction": direction}],
        )

    def _move_alias(
        self,
        conn: Connection,
        artifact_id: int,
        alias: str,
        version: int | None,
        actor: str | None,
        reason: str | None,
    ) -> None:
        if alias == "latest" or (alias.startswith("v") and alias[1:].isdecimal()):
            raise InvalidValueError(
                f"alias {alias!r} is reserved ('latest' moves by itself, vN names versions)"
            )
        key = (_L.artifact_id == artifact_id) & (_L.alias == alias)
        row = conn.execute(select(_L.version).where(key)).first()
        old = None if row is None else int(row.version)
        if old == version:
            return
        conn.execute(delete(s.artifact_aliases).where(key))
        if version is not None:
            conn.execute(
                insert(s.artifact_aliases).values(
                    artifact_id=artifact_id, alias=alias, version=version
                )
            )
        conn.execute(
            insert(s.alias_events).values(
                artifact_id=artifact_id,
                alias=alias,
                from_version=old,
                to_version=version,
                actor=actor,
                reason=reason,
                at=time.time(),
            )
        )

    def _artifact_row(self, conn: Connection, project: str, name: str) -> Any:
        """The artifact (with ``project_name``); without a project, the name must be unique."""
        q = (
            select(s.artifacts, s.projects.c.name.label("project_name"))
            .join(s.projects, s.projects.c.id == _A.project_id)
            .where(_A.name == name)
        )
        if project:
            q = q.where(s.projects.c.name == project)
        rows = conn.execute(q.order_by(s.projects.c.name)).all()
        where = f" in project {project!r}" if project else ""
        if not rows:
            raise ArtifactNotFound(f"no artifact named {name!r}{where}")
        if len(rows) > 1:
            projects = ", ".join(r.project_name for r in rows)
            raise InvalidValueError(
                f"artifact {name!r} exists in several projects ({projects})",
                hint=f"name the project: PROJECT/{name}",
            )
        return rows[0]

    def _resolve(self, conn: Connection, art: Any, ref: int | str | None) -> Any:
        q = select(s.artifact_versions).where(_V.artifact_id == art.id)
        if ref is None or ref == "latest":
            row = conn.execute(q.order_by(_V.version.desc()).limit(1)).first()
        elif isinstance(ref, int):
            row = conn.execute(q.where(_V.version == ref)).first()
        else:
            alias = conn.execute(
                select(_L.version).where((_L.artifact_id == art.id) & (_L.alias == ref))
            ).first()
            row = None if alias is None else conn.execute(q.where(_V.version == alias[0])).first()
        if row is None:
            raise ArtifactNotFound(
                f"artifact {art.name!r} has no version {ref!r}",
                hint=f"see the versions with: mltrail artifacts show {art.name}",
            )
        return row

    def _version(self, conn: Connection, project: str, art: Any, row: Any) -> ArtifactVersion:
        aliases = [
            r.alias
            for r in conn.execute(
                select(_L.alias).where((_L.artifact_id == art.id) & (_L.version == row.version))
            )
        ]
        top = conn.execute(
            select(func.max(_V.version)).where(_V.artifact_id == art.id)
        ).scalar_one()
        if top == row.version:
            aliases.append("latest")
        return ArtifactVersion(
            project=project, name=art.name, type=art.type, version=int(row.version),
            digest=row.digest, size=int(row.size), file_count=int(row.file_count),
            metadata=json.loads(row.metadata_json), aliases=tuple(sorted(aliases)),
            created_at=float(row.created_at), run_id=row.run_id, reference=bool(row.reference),
        )  # fmt: skip

    def get_artifact_version(
        self, project: str, name: str, ref: int | str | None = None
    ) -> ArtifactVersion:
        with self._read() as conn:
            art = self._artifact_row(conn, project, name)
            return self._version(conn, art.project_name, art, self._resolve(conn, art, ref))

    def artifact_versions(self, project: str, name: str) -> list[ArtifactVersion]:
        with self._read() as conn:
            art = self._artifact_row(conn, project, name)
            rows = conn.execute(
                select(s.artifact_versions).where(_V.artifact_id == art.id).order_by(_V.version)
            ).all()
            return [self._version(conn, art.project_name, art, r) for r in rows]

    def list_artifacts(
        self, project: str | None = None, type: str | None = None
    ) -> list[ArtifactVersion]:
        out: list[ArtifactVersion] = []
        with self._read() as conn:
            q = select(s.artifacts, s.projects.c.name.label("project_name")).join(
                s.projects, s.projects.c.id == _A.project_id
            )
            if project is not None:
                q = q.where(s.projects.c.name == project)
            if type is not None:
                q = q.where(_A.type == type)
            for art in conn.execute(q.order_by(_A.name)).all():
                row = self._resolve(conn, art, None)
                out.append(self._version(conn, art.project_name, art, row))
        return out

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
        """Point ``alias`` at ``version`` (None removes it); the move is recorded."""
        with self._write() as conn:
            art = self._artifact_row(conn, project, name)
            if version is not None:
                self._resolve(conn, art, version)
            self._move_alias(conn, art.id, alias, version, actor, reason)

    def alias_history(self, project: str, name: str) -> list[AliasEvent]:
        c = s.alias_events.c
        with self._read() as conn:
            art = self._artifact_row(conn, project, name)
            rows = conn.execute(
                select(s.alias_events).where(c.artifact_id == art.id).order_by(c.id)
            ).all()
        return [
            AliasEvent(r.alias, r.from_version, r.to_version, r.actor, r.reason, r.at) for r in rows
        ]

    def add_run_input(self, run_id: str, project: str, name: str, version: int) -> None:
        with self._write() as conn:
            art = self._artifact_row(conn, project, name)
            row = self._resolve(conn, art, version)
            self._edge(conn, run_id, int(row.id), "in")

    def run_artifacts(self, run_id: str) -> dict[str, list[ArtifactVersion]]:
        """``{"in": [...], "out": [...]}`` for a run."""
        out: dict[str, list[ArtifactVersion]] = {"in": [], "out": []}
        e = s.run_edges.c
        with self._read() as conn:
            q = (
                select(e.direction, s.artifact_versions, s.projects.c.name.label("project_name"))
                .join(s.artifact_versions, _V.id == e.version_id)
                .join(s.artifacts, _A.id == _V.artifact_id)
                .join(s.projects, s.projects.c.id == _A.project_id)
                .where(e.run_id == run_id)
                .order_by(_A.name, _V.version)
            )
            for row in conn.execute(q).all():
                art = conn.execute(select(s.artifacts).where(_A.id == row.artifact_id)).one()
                out[row.direction].append(self._version(conn, row.project_name, art, row))
        return out

    def artifact_runs(self, project: str, name: str, version: int) -> dict[str, list[str]]:
        """Run ids that produced (``"out"``) and consumed (``"in"``) a version."""
        e = s.run_edges.c
        with self._read() as conn:
            art = self._artifact_row(conn, project, name)
            row = self._resolve(conn, art, version)
            edges = conn.execute(
                select(e.run_id, e.direction).where(e.version_id == row.id).order_by(e.run_id)
            ).all()
        result: dict[str, list[str]] = {"in": [], "out": []}
        for edge in edges:
            result[edge.direction].append(edge.run_id)
        return result

    def search_artifacts(
        self, project: str | None = None, query: str | None = None, *, limit: int = 1000
    ) -> list[ArtifactVersion]:
        """Artifact versions matching ``query``, newest first."""
        from mltrail.store.sql.search import compile_artifact_where

        where = compile_artifact_where(query, self.dialect)  # type: ignore[attr-defined]
        q = (
            select(s.artifact_versions, s.projects.c.name.label("project_name"))
            .join(s.artifacts, _A.id == _V.artifact_id)
            .join(s.projects, s.projects.c.id == _A.project_id)
            .order_by(_V.created_at.desc(), _V.id.desc())
            .limit(limit)
        )
        if project is not None:
            q = q.where(s.projects.c.name == project)
        if where is not None:
            q = q.where(where)
        out = []
        with self._read() as conn:
            for row in conn.execute(q).all():
                art = conn.execute(select(s.artifacts).where(_A.id == row.artifact_id)).one()
                out.append(self._version(conn, row.project_name, art, row))
        return out

    def all_manifest_digests(self) -> set[str]:
        with self._read() as conn:
            return {r[0] for r in conn.execute(select(_V.digest).distinct())}
