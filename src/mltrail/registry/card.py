"""Model cards: Markdown generated from a version's metadata and lineage, then editable.

The card is stored with the version it describes; edits are recorded in the audit
trail (with the previous text), so every version keeps the card it shipped with.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["render_card"]

_TEMPLATE = """\
# {{ name }} {{ label }} (version {{ version }})

{{ meta.description or "_No description yet: edit this card to say what the model does._" }}

| | |
|---|---|
| Framework | {{ meta.framework or "unknown" }} {{ meta.framework_version or "" }} |
| Author | {{ meta.author or "unknown" }} |
| Created | {{ meta.created_date or "" }} |
{%- if run %}
| Source run | `{{ run.id }}` ({{ run.project }}/{{ run.name }}) |
{%- endif %}
| Artifact | `{{ artifact }}` |

## Intended use

{{ meta.intended_use or ask_use }}

## Training data and lineage

{% if datasets -%}
{% for d in datasets -%}
- `{{ d.name }}`{% if d.hash %} (content hash `{{ d.hash[:16] }}`){% endif %}
{% endfor %}
{%- else -%}
_No recorded dataset: log inputs with `run.use_artifact(...)` or `run.use_dataset(...)`._
{% endif %}

## Metrics

{% if metrics -%}
| metric | value |
|---|---|
{% for k, v in metrics -%}
| {{ k }} | {{ v }} |
{% endfor %}
{%- else -%}
_None recorded._
{% endif %}

## Hyperparameters

{% if params -%}
| param | value |
|---|---|
{% for k, v in params -%}
| {{ k }} | {{ v }} |
{% endfor %}
{%- else -%}
_None recorded._
{% endif %}

## Inputs and outputs

{% if signature -%}
```json
{{ signature }}
```
{%- else -%}
_No signature: register with an input example to record one._
{%- endif %}

## Limitations

{{ meta.limitations or ask_limits }}

## Environment

{% for k, v in environment -%}
- {{ k }}: {{ v }}
{% else -%}
_Not recorded._
{% endfor %}
"""


def _cell(value: Any) -> str:
    text = f"{value:.6g}" if isinstance(value, float) else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def render_card(
    *,
    name: str,
    version: int,
    label: str,
    artifact: str,
    meta: Mapping[str, Any],
    run: Any = None,
) -> str:
    import json
    import re

    from jinja2 import Environment, StrictUndefined

    env = Environment(autoescape=False, undefined=StrictUndefined, keep_trailing_newline=True)

    class _Meta(dict[str, Any]):
        def __getattr__(self, key: str) -> Any:
            return self.get(key)

    datasets = meta.get("training_dataset") or []
    if isinstance(datasets, str):
        datasets = [{"name": datasets, "hash": None}]
    elif isinstance(datasets, dict):
        datasets = [datasets]
    datasets = [d if isinstance(d, dict) else {"name": str(d), "hash": None} for d in datasets]
    signature = meta.get("signature")
    text = env.from_string(_TEMPLATE).render(
        name=name,
        version=version,
        label=label,
        artifact=artifact,
        meta=_Meta(meta),
        run=run,
        datasets=[_Meta({"name": d.get("name"), "hash": d.get("hash")}) for d in datasets],
        metrics=[(k, _cell(v)) for k, v in sorted((meta.get("metrics") or {}).items())],
        params=[(k, _cell(v)) for k, v in sorted((meta.get("hyperparameters") or {}).items())],
        signature=None if not signature else json.dumps(signature, indent=2, sort_keys=True),
        environment=sorted((meta.get("environment") or {}).items()),
        ask_use="_Who should use this model, for what, and what it must not be used for._",
        ask_limits="_Known failure modes, biases and the conditions it was not tested under._",
    )
    return re.sub(r"\n{3,}", "\n\n", text)
