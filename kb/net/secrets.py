"""API keys: read from the environment variable kb.toml names, and kept out of every message.

kb.toml never holds a key, only the name of the variable that does. Any text
that may reach a log, an error, a drop or a knowledge file goes through
:func:`redact` first, so a server that echoes the key back cannot leak it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from kb.errors import ConfigError

MASK = "[redacted]"


def read_key(env_name: str | None, what: str, *, required: bool = True) -> str | None:
    """The key held in ``$env_name``; a ConfigError naming the variable (never its value) if unset."""
    if not env_name:
        return None
    value = os.environ.get(env_name, "").strip()
    if not value:
        if required:
            raise ConfigError(f"{what}: the environment variable {env_name} (api_key_env in kb.toml) is not set")
        return None
    return value


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every secret (and its URL-encoded form) replaced by a mask."""
    from urllib.parse import quote

    for secret in secrets:
        # Very short values would mask ordinary words; real keys are long.
        if not secret or len(secret) < 6:
            continue
        for form in {secret, quote(secret, safe=""), quote(secret)}:
            text = text.replace(form, MASK)
    return text
