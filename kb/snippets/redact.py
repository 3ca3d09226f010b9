"""Secrets out of everything validation writes: whatever a snippet printed, results.json, JUnit,
--json and the result cache hold a mask where a known secret value stood.

A known secret is the value of an environment variable that kb.toml names as ``api_key_env``, of
the variables kb's engines and search providers read by default, and of any variable whose name
says it holds one (..._KEY, ..._TOKEN, ..._SECRET, PASSWORD, ...).
"""

from __future__ import annotations

import os

from kb.config import Config
from kb.net.secrets import redact
from kb.snippets.sandbox.confine import SECRET_NAME

DEFAULT_KEY_ENVS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "TAVILY_API_KEY", "BRAVE_API_KEY", "SEARXNG_API_KEY")
MIN_SECRET = 8  # shorter values would mask ordinary words; real keys are long


def known_secrets(config: Config | None, environ: dict | None = None) -> list[str]:
    """The secret values present in ``environ`` (default: this process's), longest first."""
    environ = os.environ if environ is None else environ
    names = set(DEFAULT_KEY_ENVS)
    if config is not None:
        for provider in [*config.llm.values(), *config.search.values()]:
            if provider.api_key_env:
                names.add(provider.api_key_env)
    names |= {name for name in environ if SECRET_NAME.search(name)}
    values = {environ[n].strip() for n in names if len(environ.get(n, "").strip()) >= MIN_SECRET}
    return sorted(values, key=len, reverse=True)


def redact_tree(value, secrets: list[str]):
    """``value`` (str, dict, list: a worker result, a results.json document) with every secret masked."""
    if not secrets:
        return value
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, dict):
        return {k: redact_tree(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_tree(v, secrets) for v in value]
    return value
