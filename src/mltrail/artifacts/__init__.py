"""Versioned artifacts: named manifests of content-addressed files.

A version is a manifest (``path -> object id, size``) stored as an object itself; its
object id identifies the version. The same bytes are stored once, whoever logs them.
"""

from mltrail.artifacts.names import parse_spec, validate_name, validate_relpath

__all__ = ["parse_spec", "validate_name", "validate_relpath"]
