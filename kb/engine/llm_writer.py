"""The LLM writer engines (``openai``, ``anthropic``): the writer prompt in, a checked knowledge file out.

The prompt is ``runners/writer.md``; page text goes in as quoted data. The reply
is cleaned (reasoning stripped, invented citations and URLs removed, kb's own
Sources list appended) and held to the same check as the offline writer; the
check's reasons go back to the model, at most ``max_rewrites`` times per PART.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from kb.cache import DiskCache
from kb.config import LLMProviderConfig, Price
from kb.engine.types import Draft, WriteRequest
from kb.errors import ConfigError
from kb.llm.anthropic import AnthropicClient
from kb.llm.base import ChatClient
from kb.llm.complete import complete_text
from kb.llm.openai import OpenAIClient
from kb.llm.prompt import WriterDefinition, load_writer_definition, render_prompt
from kb.llm.reply import clean_reply, sources_section
from kb.net.ratelimit import shared_limiter
from kb.net.retry import RetryPolicy
from kb.net.secrets import read_key

if TYPE_CHECKING:
    from kb.workspace import Workspace

CheckFn = Callable[[Draft, WriteRequest], list[str]]

DEFAULTS = {
    "openai": LLMProviderConfig(base_url="https://api.openai.com/v1", api_key_env="OPENAI_API_KEY"),
    "anthropic": LLMProviderConfig(base_url="https://api.anthropic.com", api_key_env="ANTHROPIC_API_KEY", max_tokens=4096),
}
REWRITE = "kb checked your file and found these problems. Write the whole file again, fixing all of them:\n"


@dataclass
class ModelSettings:
    model: str | None
    temperature: float | None
    max_tokens: int
    max_continuations: int = 2


def resolve_settings(definition: WriterDefinition, provider: LLMProviderConfig, *, model: str | None = None,
                     temperature: float | None = None, max_tokens: int | None = None) -> ModelSettings:
    """Runner definition, overridden by kb.toml, overridden by the command line."""
    def pick(*values):
        return next((v for v in values if v is not None), None)

    return ModelSettings(
        model=pick(model, provider.model, definition.model),
        temperature=pick(temperature, provider.temperature, definition.temperature),
        max_tokens=int(pick(max_tokens, provider.max_tokens, definition.max_tokens, 4096)),
        max_continuations=provider.max_continuations,
    )


def _default_check(draft: Draft, request: WriteRequest) -> list[str]:
    from kb.engine.check import check_draft  # the offline engine's check: one set of rules for every writer

    return check_draft(draft, request)


def cost_usd(prices: dict[str, Price], model: str | None, tokens_in: int, tokens_out: int) -> float | None:
    """Cost from the ``[prices]`` table of kb.toml; None when the model has no price."""
    price = prices.get(model or "")
    if price is None:
        return None
    return round(tokens_in / 1e6 * price.input_per_mtok + tokens_out / 1e6 * price.output_per_mtok, 6)


class LLMWriter:
    """A Writer (kb.engine.types) backed by a chat model."""

    def __init__(self, client: ChatClient, definition: WriterDefinition, settings: ModelSettings, *,
                 max_rewrites: int = 2, prices: dict[str, Price] | None = None, check: CheckFn | None = None) -> None:
        self.client = client
        self.engine = client.provider
        self.definition = definition
        self.settings = settings
        self.max_rewrites = max_rewrites
        self.prices = prices or {}
        self.check = check or _default_check
        # The last draft of a PART that used up its rewrites: when the runner's own check loop asks
        # again, it gets that draft back instead of a fresh round of calls (rewrites never multiply).
        self._exhausted: dict[tuple[str, int], Draft] = {}

    async def write(self, request: WriteRequest) -> Draft:
        """Ask the model for the file, check it, and feed failures back (bounded); raises ProviderError on faults."""
        key = (request.plan_path, request.part.number)
        if request.feedback and key in self._exhausted:
            # Its tokens were counted when it was written; handing it back again costs nothing.
            return replace(self._exhausted.pop(key), tokens_in=0, tokens_out=0, cost_usd=None)
        system, prompt = render_prompt(self.definition, request)
        convo = [{"role": "user", "content": prompt}]
        spent = 0
        totals = {"in": 0, "out": 0, "calls": 0, "cached": 0}
        notes: list[str] = []
        while True:
            reply = await complete_text(
                self.client, system, convo, model=self.settings.model, temperature=self.settings.temperature,
                max_tokens=self.settings.max_tokens, max_continuations=self.settings.max_continuations,
            )
            totals["in"] += reply.tokens_in
            totals["out"] += reply.tokens_out
            totals["calls"] += reply.calls
            totals["cached"] += reply.cached_calls
            notes += reply.notes
            draft = self._draft(request, reply.text, reply.model, totals, notes)
            reasons = self.check(draft, request)
            if not reasons:
                self._exhausted.pop(key, None)
                return draft
            if spent >= self.max_rewrites:
                draft.warnings.append(f"still failing kb's check after {spent} rewrite(s): {'; '.join(reasons)}")
                self._exhausted[key] = draft
                return draft
            spent += 1
            convo = [*convo, {"role": "assistant", "content": reply.text or "(empty reply)"},
                     {"role": "user", "content": REWRITE + "\n".join(f"- {r}" for r in reasons)}]

    def _draft(self, request: WriteRequest, text: str, model: str | None, totals: dict, notes: list[str]) -> Draft:
        sources = request.research.sources
        cleaned = clean_reply(text, sources)
        body = cleaned.body
        title = cleaned.title or request.part.title
        if cleaned.title is None:
            body = f"# {title}\n\n{body}"
        body = body.rstrip("\n") + "\n\n" + sources_section(sources, cleaned.cited)
        warnings = [*notes, *cleaned.warnings]
        if totals["cached"]:
            warnings.append(f"{totals['cached']} of {totals['calls']} LLM replies came from the cache (their tokens are not counted again)")
        model_name = self.settings.model or model
        return Draft(
            title=title,
            body=body,
            sources=[s for s in sources if s.id in set(cleaned.cited)],
            engine=self.engine,
            model=model_name,
            tokens_in=totals["in"],
            tokens_out=totals["out"],
            cost_usd=cost_usd(self.prices, model_name, totals["in"], totals["out"]),
            warnings=warnings,
        )


def make_client(engine: str, provider: LLMProviderConfig, *, cache: DiskCache, rng: random.Random | None = None,
                transport=None) -> ChatClient:
    """The chat client for ``engine`` ("openai" or "anthropic"), its key read from the environment."""
    key = read_key(provider.api_key_env, f"[llm.{engine}]")
    policy = RetryPolicy(max_retries=provider.max_retries, backoff_s=provider.backoff_s,
                         backoff_max_s=max(30.0, provider.backoff_s), attempt_timeout_s=provider.timeout_s)
    limiter = shared_limiter(engine, provider.base_url, provider.requests_per_minute, provider.tokens_per_minute)
    common = dict(base_url=provider.base_url, api_key=key, model=provider.model, policy=policy, limiter=limiter,
                  cache=cache, timeout_s=provider.timeout_s, rng=rng, transport=transport)
    if engine == "openai":
        return OpenAIClient(max_tokens_param=provider.max_tokens_param, **common)
    if engine == "anthropic":
        return AnthropicClient(**common)
    raise ValueError(f"not an LLM engine: {engine}")


def build_llm_writer(workspace: "Workspace", engine: str, *, model: str | None = None, temperature: float | None = None,
                     max_tokens: int | None = None, no_cache: bool = False, check: CheckFn | None = None,
                     transport=None, **_other) -> LLMWriter:
    """The ``openai`` or ``anthropic`` writer for a workspace, configured from kb.toml and runners/writer.md.

    Takes build_engine's overrides as they come; the ones meant for other engines are ignored.
    """
    config = workspace.config
    provider = config.llm.get(engine) or DEFAULTS[engine]
    cache = DiskCache.for_workspace(workspace.state_dir, no_cache=no_cache)
    client = make_client(engine, provider, cache=cache, transport=transport)
    definition = load_writer_definition(workspace.runners_dir)
    settings = resolve_settings(definition, provider, model=model, temperature=temperature, max_tokens=max_tokens)
    if not settings.model:
        raise ConfigError(f"engine {engine}: no model set: add model = \"...\" to [llm.{engine}] in kb.toml, "
                          f"to {definition.path}, or pass --model")
    return LLMWriter(client, definition, settings, max_rewrites=config.run.max_rewrites, prices=config.prices, check=check)
