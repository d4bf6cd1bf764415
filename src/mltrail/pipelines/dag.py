"""The stage graph: B depends on A when one of B's deps is (or is inside) one of A's outs."""

from __future__ import annotations

import re
from graphlib import CycleError, TopologicalSorter

from mltrail.pipelines.spec import Pipeline, PipelineError

__all__ = ["Dag", "build_dag", "render_dot", "render_mermaid", "select", "topo_order"]

#: stage name -> names of the stages it depends on.
Dag = dict[str, set[str]]


def _overlaps(a: str, b: str) -> bool:
    """``a`` and ``b`` are the same path or one is inside the other."""
    return a == b or a == "." or b == "." or a.startswith(b + "/") or b.startswith(a + "/")


def build_dag(pipeline: Pipeline, *, check_files: bool = True) -> Dag:
    """The dependency graph; raises :class:`PipelineError` for a shared output, a dep that
    is neither a file nor another stage's output (when ``check_files``), or a cycle."""
    owners: list[tuple[str, str]] = []  # (out path, stage)
    for stage in pipeline.stages.values():
        for out in stage.all_outs:
            for other_path, other in owners:
                if _overlaps(out, other_path):
                    same = "the same output" if out == other_path else "overlapping outputs"
                    raise PipelineError(
                        f"output {out!r} is claimed by two stages: {other!r} ({other_path!r}) "
                        f"and {stage.name!r} ({same})",
                        hint="each path may be written by one stage only",
                    )
            owners.append((out, stage.name))
    dag: Dag = {name: set() for name in pipeline.stages}
    for stage in pipeline.stages.values():
        for dep in stage.deps:
            producers = {s for out, s in owners if _overlaps(dep, out)}
            if not producers and check_files and not (pipeline.root / dep).exists():
                raise PipelineError(
                    f"stage {stage.name!r}: dep {dep!r} is missing: it is neither a file "
                    "nor an output of another stage",
                    hint=f"create {dep!r} or add it to the outs of the stage that makes it",
                )
            dag[stage.name] |= producers
    for name, ups in dag.items():
        if name in ups:
            raise PipelineError(f"cycle in the pipeline: {name} -> {name}")
    topo_order(dag)
    return dag


def topo_order(dag: Dag) -> list[str]:
    """Stage names, each after the stages it depends on; a cycle is a :class:`PipelineError`."""
    try:
        return list(TopologicalSorter(dag).static_order())
    except CycleError as exc:
        cycle: list[str] = exc.args[1]
        raise PipelineError(
            "cycle in the pipeline: " + " -> ".join(reversed(cycle)),
            hint="a stage cannot depend, directly or not, on its own outputs",
        ) from exc


def select(dag: Dag, target: str | None) -> Dag:
    """The subgraph ``target`` needs (itself and every stage upstream); all when None."""
    if target is None:
        return dag
    if target not in dag:
        raise PipelineError(
            f"no stage named {target!r}", hint=f"stages: {', '.join(sorted(dag)) or '-'}"
        )
    keep: set[str] = set()
    todo = [target]
    while todo:
        name = todo.pop()
        if name not in keep:
            keep.add(name)
            todo.extend(dag[name])
    return {name: dag[name] & keep for name in dag if name in keep}


def _edges(dag: Dag) -> list[tuple[str, str]]:
    return sorted((up, name) for name, ups in dag.items() for up in ups)


def render_dot(dag: Dag) -> str:
    """Graphviz source, an edge per dependency (upstream -> downstream)."""
    lines = ["digraph pipeline {", "  rankdir=LR;"]
    lines += [f'  "{name}";' for name in topo_order(dag)]
    lines += [f'  "{a}" -> "{b}";' for a, b in _edges(dag)]
    return "\n".join([*lines, "}"]) + "\n"


def render_mermaid(dag: Dag) -> str:
    """Mermaid ``flowchart`` source; node ids are the stage names where Mermaid allows."""
    order = topo_order(dag)
    ids = {
        name: name if re.fullmatch(r"[A-Za-z_][\w-]*", name) and name != "end" else f"s{i}"
        for i, name in enumerate(order)
    }
    lines = ["flowchart TD"]
    lines += [f'  {ids[name]}["{name}"]' for name in order]
    lines += [f"  {ids[a]} --> {ids[b]}" for a, b in _edges(dag)]
    return "\n".join(lines) + "\n"
