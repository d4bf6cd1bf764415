"""Run ids (stable, URL-safe) and friendly generated run names."""

from __future__ import annotations

import re
import secrets

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
#: User-chosen run ids: up to 48 characters, so "<run id>.<12 hex>" spool ids fit 64.
RUN_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,48}$")

_ADJECTIVES = [
    "amber",
    "brave",
    "calm",
    "clever",
    "crisp",
    "dapper",
    "eager",
    "fancy",
    "gentle",
    "golden",
    "happy",
    "hardy",
    "icy",
    "jolly",
    "keen",
    "lively",
    "lucid",
    "mellow",
    "misty",
    "noble",
    "polar",
    "proud",
    "quick",
    "quiet",
    "rapid",
    "rosy",
    "shiny",
    "silent",
    "snowy",
    "solar",
    "spry",
    "stellar",
    "sunny",
    "swift",
    "tidy",
    "vivid",
    "warm",
    "wild",
    "witty",
    "young",
    "zesty",
]
_NOUNS = [
    "aurora",
    "badger",
    "breeze",
    "canyon",
    "cedar",
    "comet",
    "coral",
    "dawn",
    "delta",
    "dune",
    "ember",
    "falcon",
    "fern",
    "field",
    "forest",
    "galaxy",
    "glacier",
    "grove",
    "harbor",
    "heron",
    "island",
    "lagoon",
    "lake",
    "meadow",
    "mesa",
    "moon",
    "nebula",
    "ocean",
    "otter",
    "pine",
    "planet",
    "prairie",
    "rain",
    "river",
    "sky",
    "spark",
    "star",
    "storm",
    "sun",
    "thunder",
    "tide",
    "valley",
    "wave",
    "willow",
    "wind",
]


def new_run_id() -> str:
    """12 lowercase base-36 characters: ~62 bits of randomness, safe in URLs and paths."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(12))


def new_run_name(seq: int | None = None) -> str:
    """A readable name like ``swift-river-12`` (``seq`` is the run's number in its project)."""
    number = seq if seq is not None else secrets.randbelow(1000)
    return f"{secrets.choice(_ADJECTIVES)}-{secrets.choice(_NOUNS)}-{number}"


def is_valid_run_id(run_id: str) -> bool:
    return bool(RUN_ID_RE.match(run_id))
