"""Artifacts use the object-store fixtures (a real moto S3 server on loopback)."""

from tests.objects.conftest import make_s3_store, s3_endpoint

__all__ = ["make_s3_store", "s3_endpoint"]
