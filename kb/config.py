"""kb.toml: the workspace configuration, validated with pydantic.

Unknown keys are errors (a typo should not be silently ignored). Secrets are
never stored here: the file names the environment variables that hold them.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from kb.errors import ConfigError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RunConfig(_Strict):
    runners: int = Field(4, ge=1, le=64)
    engine: Literal["offline", "openai", "anthropic"] = "offline"
    search: Literal["local", "searxng", "tavily", "brave"] = "local"
    max_rewrites: int = Field(2, ge=0, le=10)
    passages_per_section: int = Field(3, ge=1, le=20)
    # LLM engines: a draft's snippets run in the sandbox ([validate] profile) before the file lands; failures
    # go back to the writer once, then the failing snippet is removed. The offline engine runs its candidate
    # examples there too (the cpu profile, so the file is the same on any machine) and leaves failing ones out.
    run_snippets: bool = True
    # LLM engines: the sentences that pass the lexical support check go to the model, which judges whether the
    # cited passage says what they say (kb.llm.support_judge); one call per section draft.
    support_judge: bool = True
    # LLM engines with local search: for a section research left empty, the model reads the passages it ranked
    # below its bar and says which are about the section (kb.llm.relevance_judge); one call per such section.
    relevance_judge: bool = True
    # LLM engines: one last pass over the whole file that may reword and join sentences so it reads as a whole;
    # its output is checked like a draft, and a section it broke keeps its checked text.
    smooth: bool = True


class CorpusConfig(_Strict):
    folders: list[str] = Field(default_factory=list)
    packages: list[str] = Field(default_factory=lambda: ["torch"])
    include_knowledge: bool = True
    # Private-named but documented modules/objects of those packages, indexed too (torch._dynamo,
    # torch.cuda.memory._record_memory_history): dotted paths; those outside ``packages`` are not used.
    include: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _include_paths(self) -> "CorpusConfig":
        for path in self.include:
            if not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+", path):
                raise ValueError(f"include: {path!r} is not a dotted module or object path (like torch._dynamo)")
        return self


class LLMProviderConfig(_Strict):
    base_url: str
    api_key_env: str | None = None
    model: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    timeout_s: float = 120.0
    max_retries: int = 4
    backoff_s: float = Field(1.0, ge=0)  # first retry waits about this long, doubling (with jitter)
    max_continuations: int = Field(2, ge=0, le=10)  # a reply cut off by max_tokens is continued this often
    max_tokens_param: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"


class SearchProviderConfig(_Strict):
    url: str | None = None
    api_key_env: str | None = None
    results: int = 5
    requests_per_minute: int | None = None
    timeout_s: float = 20.0
    max_retries: int = 3
    backoff_s: float = Field(1.0, ge=0)


class FetchConfig(_Strict):
    timeout_s: float = 20.0
    max_bytes: int = 3_000_000
    max_redirects: int = 5
    per_host: int = 2
    pages_per_query: int = 3
    max_retries: int = Field(2, ge=0)
    backoff_s: float = Field(1.0, ge=0)
    # Private, loopback and link-local addresses are never fetched unless named here: "host" or "host:port".
    allow_private: list[str] = Field(default_factory=list)

    @field_validator("allow_private")
    @classmethod
    def _allow_entries(cls, entries: list[str]) -> list[str]:
        from kb.net.addresses import AddressPolicy

        try:
            AddressPolicy(entries)
        except ConfigError as exc:
            raise ValueError(str(exc).removeprefix("[fetch] allow_private: ")) from None
        return entries


class ResearchConfig(_Strict):
    """How web research works a PART: questions per section, follow-ups, and the PART's budget."""

    questions_per_section: int = Field(3, ge=1, le=10)  # asked from different points of view
    follow_up_rounds: int = Field(1, ge=0, le=5)  # more questions for sections still thin
    coverage: float = Field(1.0, ge=0, le=1)  # share of sections with enough passages at which research stops
    min_overlap: float = Field(0.34, ge=0, le=1)  # share of a section's words a passage must have to serve it
    # The PART's budget (None: no limit). Tokens and dollars count every model call of the PART: research's
    # questions first, then writing (sections past the budget are marked empty, with the reason).
    searches: int | None = Field(None, ge=0)
    pages: int | None = Field(None, ge=0)
    tokens: int | None = Field(None, ge=0)
    usd: float | None = Field(None, ge=0)


class ValidateConfig(_Strict):
    profile: str = "cpu"
    gpu_profile: str = "cuda"


class LayoutConfig(_Strict):
    """Where a workspace keeps its knowledge, drops and plans (paths relative to the workspace;
    globs for files). The defaults are kb's own layout; ``kb init --adopt`` writes the layout
    of an existing tree, whose files stay where they are."""

    knowledge: str = "knowledge"  # the knowledge root: "." where topic folders sit at the top
    drops: list[str] = Field(default_factory=lambda: ["drops/KNOWLEDGE-DROP-*.md"])
    plans: list[str] = Field(default_factory=lambda: ["plans/*.md"])
    completed: list[str] = Field(default_factory=lambda: ["plans/completed/*.md"])

    @model_validator(mode="after")
    def _inside(self) -> "LayoutConfig":
        for value in [self.knowledge, *self.drops, *self.plans, *self.completed]:
            parts = value.replace("\\", "/").split("/")
            if value.startswith(("/", "~")) or ".." in parts or (len(value) > 1 and value[1] == ":"):
                raise ValueError(f"{value!r} must be a path inside the workspace")
        return self


class Price(_Strict):
    input_per_mtok: float
    output_per_mtok: float
    # Prompt-cache prices; unset: writes 1.25x the input price, reads 0.1x (Anthropic) or 0.5x (OpenAI's
    # smallest discount: set cache_read_per_mtok for a model that bills less).
    cache_write_per_mtok: float | None = None
    cache_read_per_mtok: float | None = None


class Config(_Strict):
    run: RunConfig = Field(default_factory=RunConfig)
    corpus: CorpusConfig = Field(default_factory=CorpusConfig)
    llm: dict[str, LLMProviderConfig] = Field(default_factory=dict)
    search: dict[str, SearchProviderConfig] = Field(default_factory=dict)
    fetch: FetchConfig = Field(default_factory=FetchConfig)
    research: ResearchConfig = Field(default_factory=ResearchConfig)
    validate_: ValidateConfig = Field(default_factory=ValidateConfig, alias="validate")
    prices: dict[str, Price] = Field(default_factory=dict)
    layout: LayoutConfig = Field(default_factory=LayoutConfig)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def load_config(path: Path) -> Config:
    """Read and validate kb.toml; a missing file gives the defaults."""
    path = Path(path)
    if not path.exists():
        return Config()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{path}: {where}: {first['msg']}") from None
