"""The SQL metadata store (SQLite and PostgreSQL through SQLAlchemy Core)."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, SQLAlchemyError

from mltrail.config import settings
from mltrail.entities import MetricSummary, Project, RunRecord
from mltrail.errors import (
    AlreadyExists,
    ConfigConflictError,
    InvalidValueError,
    ProjectNotFound,
    RunAlreadyExists,
    RunNotFound,
    StoreError,
    StoreUnavailable,
)
from mltrail.series import Series, merge_chunks
from mltrail.store.encoding import encode_param
from mltrail.store.sql import schema as s
from mltrail.store.sql.artifacts import ArtifactStoreMixin
from mltrail.store.sql.auth import AuthStoreMixin
from mltrail.store.sql.chunks import MAX_CHUNK, OPEN_CHUNK, pack, unpack
from mltrail.store.sql.engine import WRITE, ensure_schema, make_engine, redact
from mltrail.store.sql.registry import RegistryStoreMixin
from mltrail.store.sql.sweeps import SweepStoreMixin
from mltrail.store.sql.webhooks import WebhookStoreMixin

__all__ = ["SqlStore", "encode_param"]

_IN_BATCH = 500  # keys/ids per IN (...) list
_RUN_FIELDS = {
    "name",
    "status",
    "ended_at",
    "heartbeat_at",
    "exit_reason",
    "exit_code",
    "notes",
    "group",
    "job_type",
    "started_at",
    "metadata",
}


_NEXT_SEQ = select(func.coalesce(func.max(s.runs.c.seq), 0) + 1).where(
    s.runs.c.project_id == bindparam("project_id")
)
_PROJECT_AND_NEXT_SEQ = select(
    s.projects,
    select(func.coalesce(func.max(s.runs.c.seq), 0) + 1)
    .where(s.runs.c.project_id == s.projects.c.id)
    .scalar_subquery()
    .label("next_seq"),
).where(s.projects.c.name == bindparam("name"))
_OLD_PARAMS = (
    select(s.params.c.key, s.params.c.value_json)
    .select_from(s.runs)
    .outerjoin(
        s.params,
        (s.params.c.run_id == s.runs.c.id) & s.params.c.key.in_(bindparam("keys", expanding=True)),
    )
    .where(s.runs.c.id == bindparam("run_id"))
)
_C = s.metric_chunks.c
_LAST_SEQ = (
    select(_C.key, func.max(_C.seq).label("mseq"))
    .where((_C.run_id == bindparam("run_id")) & _C.key.in_(bindparam("keys", expanding=True)))
    .group_by(_C.key)
    .subquery()
)
_TAILS = (
    select(_C.key, _C.seq, _C.num_points, _C.data)
    .join(_LAST_SEQ, (_C.key == _LAST_SEQ.c.key) & (_C.seq == _LAST_SEQ.c.mseq))
    .where(_C.run_id == bindparam("run_id"))
)
_SUMMARIES = select(s.metric_summary).where(
    (s.metric_summary.c.run_id == bindparam("run_id"))
    & s.metric_summary.c.key.in_(bindparam("keys", expanding=True))
)
_INSERT_CHUNKS = insert(s.metric_chunks)
_DELETE_CHUNK = delete(s.metric_chunks).where(
    (_C.run_id == bindparam("b_run"))
    & (_C.key == bindparam("b_key"))
    & (_C.seq == bindparam("b_seq"))
)
_INSERT_RUN = insert(s.runs)
_SPOOL_AT = select(s.spool_commits.c.offset).where(
    s.spool_commits.c.spool_id == bindparam("spool_id")
)
_INSERT_TAG = insert(s.tags)


def _chunks(seq: Sequence[str], n: int = _IN_BATCH) -> Iterator[Sequence[str]]:
    for i in range(0, len(seq), n):
        yield seq[i : i + n]


class SqlStore(
    ArtifactStoreMixin, RegistryStoreMixin, WebhookStoreMixin, AuthStoreMixin, SweepStoreMixin
):
    """A :class:`mltrail.store.Store` on SQLite or PostgreSQL."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.engine = make_engine(uri)
        try:
            ensure_schema(self.engine, uri)
        except BaseException:
            self.engine.dispose()  # do not leave pooled connections to the collector
            raise
        self.dialect = self.engine.dialect.name
        self._upserts: dict[tuple[str, tuple[str, ...]], Any] = {}

    def close(self) -> None:
        self.engine.dispose()

    # -- plumbing --------------------------------------------------------------

    @contextmanager
    def _translate(self) -> Iterator[None]:
        try:
            yield
        except OperationalError as exc:
            raise StoreUnavailable(
                f"the tracking store {redact(self.uri)} failed: {exc.orig}",
                hint="check that the database is reachable and the disk is not full; "
                "nothing logged is lost while the run's spool file is kept",
            ) from exc
        except (DBAPIError, SQLAlchemyError) as exc:
            raise StoreError(f"the tracking store {redact(self.uri)} failed: {exc}") from exc

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self._translate(), self.engine.connect() as conn:
            conn = conn.execution_options(**{WRITE: True})
            with conn.begin():
                yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self._translate(), self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def _search(self, *, in_index_order: bool = False) -> Iterator[Connection]:
        """A read transaction for search queries (``SET LOCAL``: for it alone).

        PostgreSQL's JIT compiles every plan whose estimated cost passes ``jit_above_cost``;
        for a search over 100,000 runs that costs ~60 ms and saves nothing, so it is off.
        ``in_index_order``: the page is read in sort order off an index and the scan stops
        after it; parallel workers (a Gather Merge) only add their start-up (~15 ms).
        """
        with self._read() as conn:
            if self.dialect == "postgresql":
                conn.exec_driver_sql("SET LOCAL jit = off")
                if in_index_order:
                    conn.exec_driver_sql("SET LOCAL max_parallel_workers_per_gather = 0")
            yield conn

    def _upsert(self, table: Any, rows: list[dict[str, Any]], keys: list[str]) -> Any:
        """``INSERT ... ON CONFLICT (keys) DO UPDATE`` of every other column (built once)."""
        cached = self._upserts.get((table.name, tuple(keys)))
        if cached is not None:
            return cached
        stmt: Any
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            stmt = pg_insert(table)
        else:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            stmt = sqlite_insert(table)
        cols = [c.name for c in table.columns if c.name not in keys]
        stmt = stmt.on_conflict_do_update(
            index_elements=keys, set_={c: stmt.excluded[c] for c in cols}
        )
        self._upserts[(table.name, tuple(keys))] = stmt
        return stmt

    # -- projects --------------------------------------------------------------

    def get_or_create_project(self, name: str) -> Project:
        with self._write() as conn:
            return self._project(conn, name, create=True)

    def _project(self, conn: Connection, name: str, *, create: bool) -> Project:
        query = select(s.projects).where(s.projects.c.name == name)
        row = conn.execute(query).first()
        if row is None:
            if not create:
                raise ProjectNotFound(f"no project named {name!r}")
            # Another process may create it at the same moment: insert-or-ignore, re-read.
            values = {"name": name, "created_at": time.time()}
            conn.execute(self._insert_ignore(s.projects, ["name"]), [values])
            row = conn.execute(query).one()
        return Project(id=row.id, name=row.name, created_at=row.created_at)

    def _insert_ignore(self, table: Any, keys: list[str]) -> Any:
        stmt: Any
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            stmt = pg_insert(table)
        else:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            stmt = sqlite_insert(table)
        return stmt.on_conflict_do_nothing(index_elements=keys)

    def get_project(self, name: str) -> Project:
        """The project named ``name``; raises :class:`ProjectNotFound`."""
        with self._read() as conn:
            return self._project(conn, name, create=False)

    def project_by_id(self, project_id: int) -> Project:
        """The project with integer id ``project_id`` (MLflow's experiment id)."""
        with self._read() as conn:
            row = conn.execute(select(s.projects).where(s.projects.c.id == project_id)).first()
        if row is None:
            raise ProjectNotFound(f"no project with id {project_id}")
        return Project(id=row.id, name=row.name, created_at=row.created_at)

    def rename_project(self, name: str, new_name: str) -> Project:
        """Give a project another name (its runs, artifacts and id stay)."""
        with self._write() as conn:
            proj = self._project(conn, name, create=False)
            taken = conn.execute(select(s.projects.c.id).where(s.projects.c.name == new_name))
            if taken.first() is not None:
                raise AlreadyExists(
                    f"a project named {new_name!r} already exists",
                    hint="choose another name",
                )
            conn.execute(update(s.projects).where(s.projects.c.id == proj.id).values(name=new_name))
        return Project(id=proj.id, name=new_name, created_at=proj.created_at)

    def list_projects(self) -> list[tuple[Project, int]]:
        q = (
            select(s.projects, func.count(s.runs.c.id).label("n"))
            .select_from(s.projects.outerjoin(s.runs, s.runs.c.project_id == s.projects.c.id))
            .group_by(s.projects.c.id, s.projects.c.name, s.projects.c.created_at)
            .order_by(s.projects.c.name)
        )
        with self._read() as conn:
            return [
                (Project(id=r.id, name=r.name, created_at=r.created_at), int(r.n))
                for r in conn.execute(q)
            ]

    # -- runs ------------------------------------------------------------------

    def create_run(
        self,
        *,
        run_id: str,
        project: str,
        name: str | None,
        user: str | None,
        group: str | None,
        job_type: str | None,
        parent_id: str | None,
        notes: str,
        tags: Mapping[str, str],
        metadata: Mapping[str, Any],
        started_at: float,
    ) -> RunRecord:
        from mltrail.ids import new_run_name

        created = time.time()
        meta_json = json.dumps(dict(metadata), default=str)
        try:
            with self._write() as conn:
                # the project and the run's number in it, in one round trip
                found = conn.execute(_PROJECT_AND_NEXT_SEQ, {"name": project}).first()
                if found is None:
                    proj = self._project(conn, project, create=True)
                    seq = conn.execute(_NEXT_SEQ, {"project_id": proj.id}).scalar_one()
                else:
                    proj = Project(id=found.id, name=found.name, created_at=found.created_at)
                    seq = found.next_seq
                if parent_id is not None and not self._exists(conn, parent_id):
                    raise RunNotFound(f"parent run {parent_id!r} does not exist")
                run_name = name or new_run_name(seq)
                row = {
                    "id": run_id, "project_id": proj.id, "seq": seq, "name": run_name,
                    "status": "running", "created_at": created, "started_at": started_at,
                    "heartbeat_at": started_at, "user": user, "group_name": group,
                    "job_type": job_type, "parent_id": parent_id, "notes": notes,
                    "summary_json": "{}", "metadata_json": meta_json,
                }  # fmt: skip
                conn.execute(_INSERT_RUN, row)  # one row: not an executemany
                if tags:
                    conn.execute(
                        _INSERT_TAG,
                        [{"run_id": run_id, "key": k, "value": v} for k, v in tags.items()],
                    )
        except StoreError as exc:
            if isinstance(exc.__cause__, IntegrityError) and self._run_exists(run_id):
                raise RunAlreadyExists(
                    f"a run with id {run_id!r} already exists",
                    hint="pass resume='allow' to continue it, or omit run_id",
                ) from exc
            raise
        # What get_run would read back, without reading it back.
        stale = started_at < time.time() - settings().crash_after
        return RunRecord(
            id=run_id, project=proj.name, name=run_name, status="crashed" if stale else "running",
            created_at=created, started_at=started_at, ended_at=None, heartbeat_at=started_at,
            exit_reason=None, exit_code=None, user=user, group=group, job_type=job_type,
            parent_id=parent_id, notes=notes, config={}, tags=dict(sorted(tags.items())),
            metrics={}, summary_overrides={}, metadata=json.loads(meta_json),
        )  # fmt: skip

    def _run_exists(self, run_id: str) -> bool:
        with self._read() as conn:
            return self._exists(conn, run_id)

    def _exists(self, conn: Connection, run_id: str) -> bool:
        return conn.execute(select(s.runs.c.id).where(s.runs.c.id == run_id)).first() is not None

    def run_project(self, run_id: str) -> str:
        """The name of the project run ``run_id`` belongs to (the server's access checks)."""
        q = (
            select(s.projects.c.name)
            .select_from(s.runs.join(s.projects, s.projects.c.id == s.runs.c.project_id))
            .where(s.runs.c.id == run_id)
        )
        with self._read() as conn:
            name = conn.execute(q).scalar()
        if name is None:
            raise RunNotFound(f"no run with id {run_id!r}")
        return str(name)

    def get_run(self, run_id: str) -> RunRecord:
        with self._read() as conn:
            records = self._records(conn, s.runs.c.id == run_id)
        if not records:
            raise RunNotFound(f"no run with id {run_id!r} in {redact(self.uri)}")
        return records[0]

    def list_runs(self, project: str | None = None, *, limit: int | None = None) -> list[RunRecord]:
        with self._read() as conn:
            if project is None:
                return self._records(conn, None, limit=limit)
            proj = self._project(conn, project, create=False)
            return self._records(conn, s.runs.c.project_id == proj.id, limit=limit)

    def search_runs(
        self,
        project: str | None = None,
        query: str | None = None,
        *,
        order_by: list[str] | str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[RunRecord]:
        """Runs matching ``query`` (the query language), sorted, one page."""
        from mltrail.store.sql.search import compile_search

        plan = compile_search(query, order_by, self.dialect)
        with self._search(in_index_order=bool(plan.joins)) as conn:
            cond = plan.where
            if project is not None:
                proj = self._project(conn, project, create=False)
                scope = s.runs.c.project_id == proj.id
                cond = scope if cond is None else scope & cond
            return self._records(
                conn, cond, limit=limit, offset=offset, order=plan.order, joins=plan.joins
            )

    def count_runs(self, project: str | None = None, query: str | None = None) -> int:
        from mltrail.store.sql.search import compile_count

        plan = compile_count(query, self.dialect)
        q = select(func.count()).select_from(s.runs)
        for table, on in plan.joins:
            q = q.join(table, on)
        with self._search() as conn:
            if project is not None:
                q = q.where(s.runs.c.project_id == self._project(conn, project, create=False).id)
            if plan.where is not None:
                q = q.where(plan.where)
            return int(conn.execute(q).scalar_one())

    def _records(
        self,
        conn: Connection,
        where: Any,
        *,
        limit: int | None = None,
        offset: int = 0,
        order: list[Any] | None = None,
        joins: Sequence[tuple[Any, Any]] = (),
    ) -> list[RunRecord]:
        # The project's name per returned row, not a join: with a join, SQLite (once
        # ANALYZE has seen one project) loops over projects first and can no longer read
        # runs in an index's order and stop after a page.
        project_name = (
            select(s.projects.c.name)
            .where(s.projects.c.id == s.runs.c.project_id)
            .scalar_subquery()
            .label("project_name")
        )
        q = select(s.runs, project_name)
        for table, on in joins:
            q = q.join(table, on)
        q = q.order_by(*(order or [s.runs.c.created_at.desc(), s.runs.c.id]))
        if where is not None:
            q = q.where(where)
        if limit is not None:
            q = q.limit(limit)
        if offset:
            q = q.offset(offset)
        rows = conn.execute(q).all()
        ids = [r.id for r in rows]
        params: dict[str, dict[str, Any]] = {i: {} for i in ids}
        tags: dict[str, dict[str, str]] = {i: {} for i in ids}
        metrics: dict[str, dict[str, MetricSummary]] = {i: {} for i in ids}
        p, t, m = s.params.c, s.tags.c, s.metric_summary.c
        scalars: dict[str, Any] = {}  # value_json -> value; runs share most param values
        for part in _chunks(ids):
            query = select(p.run_id, p.key, p.value_json).where(p.run_id.in_(part))
            for run_id, key, text in conn.execute(query).all():
                value = scalars.get(text, scalars)
                if value is scalars:
                    value = json.loads(text)
                    if not isinstance(value, (list, dict)):  # never share a mutable value
                        scalars[text] = value
                params[run_id][key] = value
            query = select(t.run_id, t.key, t.value).where(t.run_id.in_(part))
            for run_id, key, text in conn.execute(query).all():
                tags[run_id][key] = text
            query = select(m.run_id, *_SUMMARY_COLUMNS).where(m.run_id.in_(part))
            for run_id, *summary in conn.execute(query).all():
                metrics[run_id][summary[0]] = _summary_of(*summary)
        stale_before = time.time() - settings().crash_after
        return [
            RunRecord(
                id=r.id,
                project=r.project_name,
                name=r.name,
                # a live run's heartbeat stopped: show it crashed (sync persists that)
                status="crashed"
                if r.status == "running" and (r.heartbeat_at or 0) < stale_before
                else r.status,
                created_at=r.created_at,
                started_at=r.started_at,
                ended_at=r.ended_at,
                heartbeat_at=r.heartbeat_at,
                exit_reason=r.exit_reason,
                exit_code=r.exit_code,
                user=r.user,
                group=r.group_name,
                job_type=r.job_type,
                parent_id=r.parent_id,
                notes=r.notes,
                config=dict(sorted(params[r.id].items())),
                tags=dict(sorted(tags[r.id].items())),
                metrics=metrics[r.id],
                summary_overrides=json.loads(r.summary_json),
                metadata=json.loads(r.metadata_json),
            )
            for r in rows
        ]

    def update_run(self, run_id: str, **fields: Any) -> None:
        unknown = set(fields) - _RUN_FIELDS
        if unknown:
            raise InvalidValueError(f"cannot update run fields {sorted(unknown)}")
        values = dict(fields)
        if "group" in values:
            values["group_name"] = values.pop("group")
        if "metadata" in values:
            values["metadata_json"] = json.dumps(values.pop("metadata"), default=str)
        if not values:  # nothing to change; the run must still exist
            self.run_project(run_id)
            return
        with self._write() as conn:
            n = conn.execute(update(s.runs).where(s.runs.c.id == run_id).values(**values)).rowcount
        if n == 0:
            raise RunNotFound(f"no run with id {run_id!r}")

    def mark_stale_runs_crashed(self, older_than: float) -> list[str]:
        """Runs still 'running' whose heartbeat is older than ``older_than`` become crashed."""
        cond = (s.runs.c.status == "running") & (s.runs.c.heartbeat_at < older_than)
        with self._write() as conn:
            ids = [r.id for r in conn.execute(select(s.runs.c.id).where(cond))]
            if ids:
                conn.execute(
                    update(s.runs)
                    .where(cond)
                    .values(
                        status="crashed",
                        ended_at=s.runs.c.heartbeat_at,
                        exit_reason="no heartbeat: the process stopped without finishing",
                    )
                )
        return ids

    # -- params, tags, summary ---------------------------------------------------

    def log_params(
        self, run_id: str, params: Mapping[str, Any], *, allow_change: bool = False
    ) -> None:
        if not params:
            return
        encoded = {k: encode_param(v) for k, v in params.items()}
        with self._write() as conn:
            old: dict[str, str] = {}
            for part in _chunks(list(encoded)):
                # one row per logged key, or one row of NULLs: the run exists either way
                found = conn.execute(_OLD_PARAMS, {"run_id": run_id, "keys": part}).all()
                if not found:
                    raise RunNotFound(f"no run with id {run_id!r}")
                old.update({key: text for key, text in found if key is not None})
            if not allow_change:
                for k, (text, _num) in encoded.items():
                    if k in old and old[k] != text:
                        raise ConfigConflictError(
                            f"param {k!r} of run {run_id} is already {old[k]}; "
                            f"refusing to change it to {text}",
                            hint="params are fixed once logged; pass allow_val_change=True "
                            "to overwrite on purpose, or start a new run",
                        )
            rows = [
                {
                    "run_id": run_id,
                    "key": k,
                    "value_json": t,
                    "value_num": n,
                    "value_text": params[k] if isinstance(params[k], str) else t,
                }
                for k, (t, n) in encoded.items()
                if old.get(k) != t
            ]
            if rows:
                conn.execute(self._upsert(s.params, rows, ["run_id", "key"]), rows)

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        if not tags:
            return
        rows = [{"run_id": run_id, "key": k, "value": v} for k, v in tags.items()]
        with self._write() as conn:
            if not self._exists(conn, run_id):
                raise RunNotFound(f"no run with id {run_id!r}")
            conn.execute(self._upsert(s.tags, rows, ["run_id", "key"]), rows)

    def delete_tag(self, run_id: str, key: str) -> None:
        with self._write() as conn:
            conn.execute(delete(s.tags).where((s.tags.c.run_id == run_id) & (s.tags.c.key == key)))

    def merge_metadata(self, run_id: str, values: Mapping[str, Any]) -> None:
        """Add or replace top-level keys of the run's captured metadata."""
        with self._write() as conn:
            row = conn.execute(select(s.runs.c.metadata_json).where(s.runs.c.id == run_id)).first()
            if row is None:
                raise RunNotFound(f"no run with id {run_id!r}")
            current = json.loads(row.metadata_json)
            current.update(values)
            text = json.dumps(current, default=str)
            conn.execute(update(s.runs).where(s.runs.c.id == run_id).values(metadata_json=text))

    def append_logs(self, run_id: str, text: str) -> None:
        """Append a chunk of console output."""
        if not text:
            return
        c = s.run_logs.c
        with self._write() as conn:
            if not self._exists(conn, run_id):
                raise RunNotFound(f"no run with id {run_id!r}")
            last = conn.execute(
                select(func.coalesce(func.max(c.seq), 0)).where(c.run_id == run_id)
            ).scalar_one()
            conn.execute(
                insert(s.run_logs).values(
                    run_id=run_id, seq=last + 1, created_at=time.time(), data=text
                )
            )

    def read_logs(self, run_id: str, *, after: int = 0) -> list[tuple[int, str]]:
        """Console output chunks after sequence number ``after``, in order."""
        c = s.run_logs.c
        q = select(c.seq, c.data).where((c.run_id == run_id) & (c.seq > after)).order_by(c.seq)
        with self._read() as conn:
            return [(int(r.seq), str(r.data)) for r in conn.execute(q)]

    def set_summary(self, run_id: str, values: Mapping[str, Any]) -> None:
        with self._write() as conn:
            row = conn.execute(select(s.runs.c.summary_json).where(s.runs.c.id == run_id)).first()
            if row is None:
                raise RunNotFound(f"no run with id {run_id!r}")
            current = json.loads(row.summary_json)
            current.update(values)
            text = json.dumps(current, default=str, allow_nan=True)
            conn.execute(update(s.runs).where(s.runs.c.id == run_id).values(summary_json=text))

    # -- metrics -----------------------------------------------------------------

    def write_metrics(
        self,
        run_id: str,
        batch: Mapping[str, Series],
        *,
        spool_id: str | None = None,
        spool_offset: int | None = None,
    ) -> None:
        """Append one batch of points in one transaction (with its spool offset)."""
        keys = [k for k, v in batch.items() if len(v)]
        with self._write() as conn:
            if spool_id is not None and spool_offset is not None:
                # a retried batch (its answer was lost on the way back) is applied once
                done = conn.execute(_SPOOL_AT, {"spool_id": spool_id}).scalar()
                if done is not None and done >= spool_offset:
                    return
            tails = self._tails(conn, run_id, keys)
            summaries = self._summaries(conn, run_id, keys)
            new_chunks: list[dict[str, Any]] = []
            replaced: list[dict[str, Any]] = []
            summary_rows: list[dict[str, Any]] = []
            for key in keys:
                series = batch[key]
                tail = tails.get(key)
                seq = 0
                if tail is not None:
                    seq, count, blob = tail
                    if blob is not None:  # extend the open tail chunk in place
                        merged = unpack(blob, count)
                        merged.extend(series)
                        series = merged
                        replaced.append({"b_run": run_id, "b_key": key, "b_seq": seq})
                    else:
                        seq += 1
                ordered = series.is_ordered()
                for start in range(0, len(series), MAX_CHUNK):
                    part = (
                        series.slice(start, start + MAX_CHUNK)
                        if start or len(series) > MAX_CHUNK
                        else series
                    )
                    new_chunks.append(
                        {
                            "run_id": run_id,
                            "key": key,
                            "seq": seq,
                            "first_step": part.steps[0],
                            "last_step": part.steps[-1],
                            "num_points": len(part),
                            "ordered": ordered or part.is_ordered(),
                            "data": pack(part),
                        }
                    )
                    seq += 1
                new = batch[key]
                new_ordered = ordered if new is series else new.is_ordered()
                summary_rows.append(
                    _merge_summary(run_id, key, summaries.get(key), new, new_ordered)
                )
            if replaced:
                conn.execute(_DELETE_CHUNK, replaced)
            if new_chunks:
                conn.execute(_INSERT_CHUNKS, new_chunks)
            if summary_rows:
                conn.execute(
                    self._upsert(s.metric_summary, summary_rows, ["run_id", "key"]), summary_rows
                )
            if spool_id is not None and spool_offset is not None:
                row = {"spool_id": spool_id, "run_id": run_id, "offset": spool_offset}
                conn.execute(self._upsert(s.spool_commits, [row], ["spool_id"]), row)

    def _tails(
        self, conn: Connection, run_id: str, keys: list[str]
    ) -> dict[str, tuple[int, int, bytes | None]]:
        """Per key: (seq, count, data if the chunk is still open else None)."""
        out: dict[str, tuple[int, int, bytes | None]] = {}
        for part in _chunks(keys):
            for key, seq, n, data in conn.execute(_TAILS, {"run_id": run_id, "keys": part}):
                n = int(n)
                out[key] = (int(seq), n, data if n < OPEN_CHUNK else None)
        return out

    def _summaries(self, conn: Connection, run_id: str, keys: list[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for part in _chunks(keys):
            rows = conn.execute(_SUMMARIES, {"run_id": run_id, "keys": part})
            out.update({r.key: r for r in rows})
        return out

    def spool_offset(self, spool_id: str) -> int:
        with self._read() as conn:
            q = select(s.spool_commits.c.offset).where(s.spool_commits.c.spool_id == spool_id)
            row = conn.execute(q).first()
        return 0 if row is None else int(row.offset)

    def commit_spool(self, spool_id: str, run_id: str, offset: int) -> None:
        """Record that the store holds a spool's records up to ``offset``."""
        row = {"spool_id": spool_id, "run_id": run_id, "offset": offset}
        with self._write() as conn:
            conn.execute(self._upsert(s.spool_commits, [row], ["spool_id"]), row)

    def forget_spool(self, spool_id: str) -> None:
        with self._write() as conn:
            conn.execute(delete(s.spool_commits).where(s.spool_commits.c.spool_id == spool_id))

    def metric_history(self, run_id: str, key: str) -> Series:
        c = s.metric_chunks.c
        q = (
            select(c.num_points, c.ordered, c.data)
            .where((c.run_id == run_id) & (c.key == key))
            .order_by(c.seq)
        )
        with self._read() as conn:
            rows = conn.execute(q).all()
            if not rows and not self._exists(conn, run_id):
                raise RunNotFound(f"no run with id {run_id!r}")
        return merge_chunks((unpack(r.data, int(r.num_points)), bool(r.ordered)) for r in rows)

    def metric_summaries(self, run_id: str) -> dict[str, MetricSummary]:
        q = select(s.metric_summary).where(s.metric_summary.c.run_id == run_id)
        with self._read() as conn:
            return {r.key: _summary(r) for r in conn.execute(q)}


def _summary(row: Any) -> MetricSummary:
    return _summary_of(*(getattr(row, c.name) for c in _SUMMARY_COLUMNS))


_SUMMARY_COLUMNS = tuple(
    s.metric_summary.c[name]
    for name in ("key", "last_value", "last_is_nan", "last_step", "last_timestamp",
                 "min_value", "max_value", "num_points")
)  # fmt: skip


def _summary_of(
    key: str, last: Any, nan: Any, step: Any, stamp: Any, lo: Any, hi: Any, count: Any
) -> MetricSummary:
    return MetricSummary(
        key=key,
        last=math.nan if nan else float(last),
        last_step=int(step),
        last_timestamp=float(stamp),
        min=None if lo is None else float(lo),
        max=None if hi is None else float(hi),
        count=int(count),
    )


def _merge_summary(
    run_id: str, key: str, old: Any, series: Series, ordered: bool
) -> dict[str, Any]:
    steps, values, stamps = series.steps, series.values, series.timestamps
    best = series.last_index(ordered)
    lo, hi = series.finite_min_max()
    row: dict[str, Any] = {
        "run_id": run_id,
        "key": key,
        "last_value": values[best],
        "last_step": steps[best],
        "last_timestamp": stamps[best],
        "min_value": lo,
        "max_value": hi,
        "num_points": len(steps),
    }
    if old is not None:
        row["num_points"] += int(old.num_points)
        if old.min_value is not None:
            row["min_value"] = old.min_value if lo is None else min(lo, old.min_value)
        if old.max_value is not None:
            row["max_value"] = old.max_value if hi is None else max(hi, old.max_value)
        if old.last_step > steps[best]:
            row["last_value"] = math.nan if old.last_is_nan else old.last_value
            row["last_step"] = old.last_step
            row["last_timestamp"] = old.last_timestamp
    last = row["last_value"]
    row["last_is_nan"] = last != last
    if row["last_is_nan"]:
        row["last_value"] = None
    return row
