"""The controller's own secrets: the master key that encrypts AccessKey secrets, and tokens.

A secret comes from settings (``EAIS_MASTER_KEY`` …) or, when unset, from a file in
``state_dir`` that is created once with mode 0600. A malformed master key stops start-up.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from controller.settings import ControllerSettings


class SecretBox:
    """Authenticated encryption of secrets at rest (Fernet: AES-128-CBC + HMAC-SHA256)."""

    def __init__(self, master_key: str) -> None:
        try:
            self._fernet = Fernet(master_key.encode())
        except (ValueError, TypeError) as exc:
            raise ValueError(
                "the master key is not a valid Fernet key (32 url-safe base64 bytes); "
                "generate one with: python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
            ) from exc

    def seal(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def open(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken as exc:
            raise ValueError("a stored secret cannot be decrypted: is this the master key it was sealed with?") from exc


def _read_or_create(path: Path, make: callable) -> str:  # type: ignore[valid-type]
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = make()
    # O_EXCL: two processes starting at once must not write two different keys.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value


def master_key(settings: ControllerSettings) -> str:
    if settings.master_key:
        return settings.master_key
    return _read_or_create(settings.resolved_state_dir() / "master.key", lambda: Fernet.generate_key().decode())


def admin_token(settings: ControllerSettings) -> str:
    if settings.admin_token:
        return settings.admin_token
    return _read_or_create(settings.resolved_state_dir() / "admin.token", lambda: secrets.token_urlsafe(32))


def node_token(settings: ControllerSettings) -> str:
    if settings.node_token:
        return settings.node_token
    return _read_or_create(settings.resolved_state_dir() / "node.token", lambda: secrets.token_urlsafe(32))


def secret_box(settings: ControllerSettings) -> SecretBox:
    return SecretBox(master_key(settings))
