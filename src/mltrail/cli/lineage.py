"""``mltrail lineage``: which runs and artifact versions led to (or came from) a target."""

from __future__ import annotations

from typing import Any, Literal

import typer
from rich.text import Text
from rich.tree import Tree

from mltrail.cli._common import UriOpt, console, print_json
from mltrail.entities import LineageNode

__all__ = ["lineage", "to_dot"]

_STYLE = {"run": "cyan", "artifact": "green", "model": "magenta"}


def to_dict(node: LineageNode) -> dict[str, Any]:
    return {
        "kind": node.kind,
        "id": node.id,
        "label": node.label,
        "children": [to_dict(c) for c in node.children],
    }


def _tree(node: LineageNode, into: Tree | None = None) -> Tree:
    label = Text(node.label, style=_STYLE.get(node.kind, ""))
    branch = Tree(label) if into is None else into.add(label)
    for child in node.children:
        _tree(child, branch)
    return branch


def _quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def to_dot(root: LineageNode, direction: str) -> str:
    """Graphviz DOT; edges follow the data: artifact -> run that used it -> its outputs."""
    nodes: dict[str, LineageNode] = {}
    edges: dict[tuple[str, str], None] = {}

    def visit(node: LineageNode) -> None:
        nodes.setdefault(node.id, node)
        for child in node.children:
            edge = (child.id, node.id) if direction == "up" else (node.id, child.id)
            edges.setdefault(edge, None)
            visit(child)

    visit(root)
    lines = ["digraph lineage {", "  rankdir=LR;", "  node [fontname=Helvetica];"]
    for node_id, node in nodes.items():
        shape = "box" if node.kind == "run" else "ellipse"
        extra = ", penwidth=2" if node is root else ""
        lines.append(f"  {_quote(node_id)} [label={_quote(node.label)}, shape={shape}{extra}];")
    lines += [f"  {_quote(a)} -> {_quote(b)};" for a, b in edges]
    lines.append("}")
    return "\n".join(lines) + "\n"


def lineage(
    target: str = typer.Argument(
        ...,
        help="A run id, an artifact version (NAME:v3, NAME:ALIAS, PROJECT/NAME:v3) or a "
        "model version (MODEL@3, MODEL@production).",
    ),
    direction: Literal["up", "down"] = typer.Option(
        "up", "--direction", "-d", help="up: what it was made from; down: what was made from it."
    ),
    depth: int = typer.Option(3, "--depth", "-n", min=0, help="Follow at most this many edges."),
    fmt: Literal["tree", "dot", "json"] = typer.Option(
        "tree", "--format", "-f", help="tree (for reading), dot (for graphviz) or json."
    ),
    project: str | None = typer.Option(
        None, "--project", "-p", help="The project of an artifact TARGET (runs need none)."
    ),
    as_json: bool = typer.Option(False, "--json", help="The same as --format json."),
    uri: str = UriOpt,
) -> None:
    """The lineage graph of a run or artifact version: inputs (up) or outputs (down).

    Runs consume and produce artifact versions; edges alternate run -> artifact -> run.
    Render the dot format with: mltrail lineage model:v3 -f dot | dot -Tsvg > lineage.svg
    """
    from mltrail.cli.artifacts import split_spec
    from mltrail.client.client import Client

    if as_json and fmt not in ("tree", "json"):
        raise typer.BadParameter(f"--json conflicts with --format {fmt}", param_hint="--json")
    if ":" in target or "/" in target:
        target, project = split_spec(target, project)
    root = Client(uri).lineage(target, direction=direction, depth=depth, project=project)
    if as_json or fmt == "json":
        print_json(to_dict(root))
    elif fmt == "dot":
        typer.echo(to_dot(root, direction), nl=False)
    else:
        console.print(_tree(root))
