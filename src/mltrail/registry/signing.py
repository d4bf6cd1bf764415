"""Ed25519 signatures over model versions (via ``cryptography``).

A version's signed payload is canonical JSON naming the model, the version, its label,
the artifact version and the artifact manifest's content hash. The manifest lists every
file's hash, so the signature covers every byte: downloading verifies the signature,
then the manifest hash, then each file's hash as it is read.

The private key is a PEM file: ``MLTRAIL_SIGNING_KEY`` names it, else
``$XDG_CONFIG_HOME/mltrail/signing-key.pem`` (created on first use, mode 0600). Public
keys are recorded in the metadata store, so anyone reading the registry can verify.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mltrail.errors import ConfigurationError, SignatureInvalid

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

__all__ = ["Signer", "canonical", "key_path", "verify"]


def key_path() -> Path:
    env = os.environ.get("MLTRAIL_SIGNING_KEY")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "mltrail" / "signing-key.pem"


def canonical(payload: Mapping[str, Any]) -> str:
    return json.dumps(dict(payload), sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _public_pem(key: Ed25519PrivateKey) -> str:
    from cryptography.hazmat.primitives import serialization

    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def _key_id(public_pem: str) -> str:
    return hashlib.sha256(public_pem.encode()).hexdigest()[:16]


class Signer:
    """The local signing key, loaded (or created) once."""

    def __init__(self, path: Path | None = None) -> None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        self.path = path or key_path()
        try:
            if not self.path.exists():
                self._create(self.path)
            loaded = serialization.load_pem_private_key(self.path.read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as exc:
            raise ConfigurationError(
                f"cannot use the signing key {self.path}: {exc}",
                hint="point MLTRAIL_SIGNING_KEY at an unencrypted Ed25519 PEM private key, "
                "or remove the file to have a new key made",
            ) from exc
        if not isinstance(loaded, Ed25519PrivateKey):
            raise ConfigurationError(f"the signing key {self.path} is not an Ed25519 key")
        self._key = loaded
        self.public_pem = _public_pem(loaded)
        self.key_id = _key_id(self.public_pem)

    @staticmethod
    def _create(path: Path) -> None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        try:
            os.link(tmp, path)  # never replace a key another process just made
        except FileExistsError:
            pass
        finally:
            tmp.unlink()

    def sign(self, payload: Mapping[str, Any]) -> tuple[str, str, str]:
        """``(canonical payload, signature hex, key id)``."""
        text = canonical(payload)
        return text, self._key.sign(text.encode()).hex(), self.key_id


def verify(
    public_pem: str | None, payload: str | None, signature_hex: str | None, what: str
) -> None:
    """Check an Ed25519 signature; :class:`SignatureInvalid` says what is wrong."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if payload is None or signature_hex is None:
        raise SignatureInvalid(
            f"{what} is not signed",
            hint="pass verify=False to download an unsigned version deliberately",
        )
    if public_pem is None:
        raise SignatureInvalid(f"{what} was signed by a key this registry does not know")
    key = serialization.load_pem_public_key(public_pem.encode())
    if not isinstance(key, Ed25519PublicKey):
        raise SignatureInvalid(f"the key that signed {what} is not an Ed25519 key")
    try:
        key.verify(bytes.fromhex(signature_hex), payload.encode())
    except (InvalidSignature, ValueError):
        raise SignatureInvalid(
            f"the signature of {what} does not verify: its registry record was altered "
            "after signing",
            hint="do not deploy it; compare `mltrail models history` with the artifact",
        ) from None
