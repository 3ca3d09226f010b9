"""Pick the researcher and writer a run uses, from kb.toml ``[run]`` and the command line.

``offline`` + ``local`` (the defaults) need no network and no key. The LLM writers
(``openai``, ``anthropic``) and web researchers (``searxng``, ``tavily``, ``brave``)
are built by their own modules, imported only when asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kb.engine.types import Researcher, Writer
from kb.errors import ConfigError

ENGINES = ("offline", "openai", "anthropic")
SEARCHES = ("local", "searxng", "tavily", "brave")


@dataclass
class Engine:
    """What a runner task uses: a researcher, a writer, and the check every draft must pass."""

    researcher: Researcher
    writer: Writer
    engine: str
    search: str
    check: Callable[..., list[str]]

    @property
    def model(self) -> str | None:
        settings = getattr(self.writer, "settings", None)
        return getattr(settings, "model", None) if settings is not None else None


def _local_researcher(workspace, **overrides: Any):
    from kb.engine.offline.research import LocalResearcher

    return LocalResearcher(workspace, passages_per_section=workspace.config.run.passages_per_section,
                           progress=overrides.get("progress"), index=overrides.get("corpus_index"))


def _web_researcher(workspace, search: str, **overrides: Any):
    from kb.web.research import build_web_researcher

    return build_web_researcher(workspace, search, **overrides)


def _offline_writer(workspace, researcher, **overrides: Any):
    from kb.engine.offline.gate import SnippetGate
    from kb.engine.offline.owners import QuoteOwners
    from kb.engine.offline.research import LocalResearcher
    from kb.engine.offline.writer import ExtractiveWriter

    corpus = resolve = owners = linkable = None
    if isinstance(researcher, LocalResearcher):
        linkable = researcher.linkable  # an empty section may link to the file that quotes its answer
        corpus = researcher.describe  # called at write time: the index loads on first research
        resolve = lambda path: "." in path and bool(researcher.corpus().named(path))  # noqa: E731
        owners = QuoteOwners(workspace, researcher.research_part)  # no excerpt in two files of a run
    # A draft's examples run in the sandbox before the file lands (kb.toml [run] run_snippets, as for the LLM engines).
    gate = SnippetGate(workspace.validators_dir, state_dir=workspace.state_dir) if workspace.config.run.run_snippets else None
    return ExtractiveWriter(workspace.runners_dir, corpus=corpus, resolve=resolve, today=overrides.get("today"),
                            gate=gate, owners=owners, knowledge_root=workspace.knowledge_prefix.rstrip("/"),
                            linkable=linkable)


def _llm_writer(workspace, engine: str, **overrides: Any):
    from kb.engine.llm_writer import build_llm_writer

    return build_llm_writer(workspace, engine, **overrides)


def build_engine(workspace, *, engine: str | None = None, search: str | None = None, **overrides: Any) -> Engine:
    """The researcher + writer for a run: ``engine``/``search`` override kb.toml's ``[run]`` values.

    ``overrides`` go to the builders (e.g. model, temperature, no_cache, progress, today);
    each builder ignores the ones meant for others. Unknown names raise ConfigError.
    """
    from kb.engine.check import check_draft

    engine = engine or workspace.config.run.engine
    search = search or workspace.config.run.search
    if engine not in ENGINES:
        raise ConfigError(f"unknown writer engine {engine!r} (choose from {', '.join(ENGINES)})")
    if search not in SEARCHES:
        raise ConfigError(f"unknown search provider {search!r} (choose from {', '.join(SEARCHES)})")
    if search == "local":
        researcher = _local_researcher(workspace, **overrides)
    else:
        researcher = _web_researcher(workspace, search, engine=engine, **overrides)
    if engine == "offline":
        writer = _offline_writer(workspace, researcher, **overrides)
    else:
        writer = _llm_writer(workspace, engine, check=overrides.pop("check", None) or check_draft, **overrides)
    return Engine(researcher=researcher, writer=writer, engine=engine, search=search, check=check_draft)
