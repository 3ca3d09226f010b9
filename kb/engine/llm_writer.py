"""The LLM writer engines (``openai``, ``anthropic``): a PART's passages in, a checked knowledge file out.

For a section research left empty, the model first reads the passages research ranked below its bar and says
which are about the section (kb.llm.relevance_judge); those it accepts are that section's passages.

Section by section: ``runners/writer.md`` asks for one section's body from that section's passages
(quoted as data, numbered across the PART so ``[n]`` names one passage). Each reply is cleaned
(reasoning, URLs, stray headings removed) and every factual sentence is checked against the passages it
cites: lexically (kb.llm.support), then by the model as judge (kb.llm.support_judge); the reasons go back
to the model once, and what still fails is removed. A call writes the overview from the accepted sections,
and a last one may reword the whole file so it reads as one; both are checked the same way. Writing stays
within the PART's token and dollar budget (what research spent counts): a section the budget does not
reach is marked empty with that reason. The file is then held to the same check as the offline writer's.
"""

from __future__ import annotations

import ast
import asyncio
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from kb.cache import DiskCache
from kb.config import LLMProviderConfig, Price
from kb.engine.types import Draft, WriteRequest
from kb.errors import ConfigError
from kb.llm.anthropic import AnthropicClient
from kb.llm.base import ChatClient
from kb.llm.complete import complete_text
from kb.llm.openai import OpenAIClient
from kb.engine.check import PYTHON, curated_note
from kb.llm.evidence import Evidence, number_passages, sources_section
from kb.llm.prompt import (SYSTEM_PROMPT, WriterDefinition, data_block, load_writer_definition, render_overview_prompt,
                           render_section_prompt, section_label)
from kb.llm.reply import clean_section
from kb.llm.support import Review, keep_supported, prose_sentences, review
from kb.llm.relevance_judge import RelevanceResult, apply_relevance, relevance_prompt, with_accepted
from kb.llm.support_judge import apply_judgement, judge_prompt, parse_judgement
from kb.web.budget import Budget
from kb.mdblocks import parse_blocks
from kb.plan.model import Section
from kb.net.ratelimit import shared_limiter
from kb.net.retry import RetryPolicy
from kb.net.secrets import read_key

if TYPE_CHECKING:
    from kb.workspace import Workspace

CheckFn = Callable[[Draft, WriteRequest], list[str]]
SnippetRunner = Callable[[str, str], list]  # (file name, text) -> kb.snippets.draft.SnippetVerdict list

DEFAULTS = {
    "openai": LLMProviderConfig(base_url="https://api.openai.com/v1", api_key_env="OPENAI_API_KEY"),
    "anthropic": LLMProviderConfig(base_url="https://api.anthropic.com", api_key_env="ANTHROPIC_API_KEY", max_tokens=4096),
}
REWRITE_SECTION = ("kb checked every sentence against the passage it cites and found these problems. Write the section "
                   "again, fixing all of them; leave out any statement no passage supports:\n")
SMOOTH_PROMPT = """Below is the knowledge file "{title}" as kb accepted it, section by section. Make it read as one
file: you may reorder sentences within a section, join them, and reword them so one leads to the next. Keep
every heading exactly as it is and in the same order, keep every code block exactly as it is, keep each
sentence's facts and its citation numbers ([n]), and add no fact, number or name. A sentence without a
citation states nothing kb can check, so kb removes it; kb checks every sentence again against its passages
and keeps the section as it was where your version lost a citation or a code block. Reply with the whole file,
starting with its first "## " heading, and nothing else.

{file}"""


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


# A prompt-cache read's share of the input price where [prices] does not say: Anthropic bills 0.1x; OpenAI's
# discount depends on the model (0.5x for the GPT-4o family, less for newer ones), so kb assumes the smallest
# discount and never under-reports; set cache_read_per_mtok for the model's own price.
CACHE_READ_SHARE = {"anthropic": 0.1, "openai": 0.5}


def cost_usd(prices: dict[str, Price], model: str | None, tokens_in: int, tokens_out: int, *,
             cache_write: int = 0, cache_read: int = 0, provider: str = "anthropic") -> float | None:
    """Cost from the ``[prices]`` table of kb.toml; None when the model has no price.

    ``tokens_in`` is billed at the input price; prompt-cache writes and reads at their own prices.
    """
    price = prices.get(model or "")
    if price is None:
        return None
    write = price.cache_write_per_mtok if price.cache_write_per_mtok is not None else 1.25 * price.input_per_mtok
    read = (price.cache_read_per_mtok if price.cache_read_per_mtok is not None
            else CACHE_READ_SHARE.get(provider, 0.1) * price.input_per_mtok)
    return round((tokens_in * price.input_per_mtok + cache_write * write + cache_read * read
                  + tokens_out * price.output_per_mtok) / 1e6, 6)


@dataclass
class Usage:
    """Tokens and calls of one stage (fresh replies only: cached ones were paid for before)."""

    input: int = 0  # billed at the full input price
    output: int = 0
    cache_write: int = 0
    cache_read: int = 0
    calls: int = 0
    cached: int = 0  # replies answered by kb's own cache (free)
    provider: str = "anthropic"  # whose prompt-cache prices apply (kb.engine.llm_writer.CACHE_READ_SHARE)

    def add(self, reply) -> None:
        self.input += reply.tokens_in
        self.output += reply.tokens_out
        self.cache_write += reply.cache_write
        self.cache_read += reply.cache_read
        self.calls += reply.calls
        self.cached += reply.cached_calls

    @property
    def prompt(self) -> int:
        """Every prompt token sent, cached by the provider or not."""
        return self.input + self.cache_write + self.cache_read

    def cost(self, prices: dict[str, Price], model: str | None) -> float | None:
        return cost_usd(prices, model, self.input, self.output, cache_write=self.cache_write, cache_read=self.cache_read,
                        provider=self.provider)

    def record(self, prices: dict[str, Price], model: str | None) -> dict:
        entry = {"input": self.prompt, "output": self.output, "calls": self.calls, "cached_calls": self.cached}
        if self.cache_write or self.cache_read:
            entry.update(prompt_cache_write=self.cache_write, prompt_cache_read=self.cache_read)
        cost = self.cost(prices, model)
        if cost is not None:
            entry["cost_usd"] = cost
        return entry


@dataclass
class PartSpend:
    """What writing one PART spends, by stage, and the budget (tokens, dollars) it writes within."""

    sections: Usage = field(default_factory=Usage)
    overview: Usage = field(default_factory=Usage)
    judge: Usage = field(default_factory=Usage)
    smooth: Usage = field(default_factory=Usage)
    relevance: Usage = field(default_factory=Usage)
    budget: Budget | None = None  # None: no limit; else research's spending is already in it
    stopped: str | None = None  # why writing stopped early (the budget), for the drop

    def allows(self) -> bool:
        """Whether one more model call fits the budget (the first refusal is remembered)."""
        if self.budget is None or (self.budget.allows("tokens", 1) and self.budget.allows("usd", 1e-9)):
            return True
        self.stopped = self.stopped or self.budget.stopped
        return False

    def stages(self) -> dict[str, Usage]:
        return {"judge_relevance": self.relevance, "write_sections": self.sections, "write_overview": self.overview,
                "check_support": self.judge, "write_smooth": self.smooth}


def part_budget(research) -> Budget | None:
    """The PART's token and dollar budget as research left it (its own spending counted), or None: no limit."""
    record = (research.log or {}).get("budget") or {}
    limits = {k: v for k, v in (record.get("limits") or {}).items() if k in ("tokens", "usd") and v is not None}
    if not limits:
        return None
    budget = Budget(limits=dict(limits))
    for kind in ("tokens", "usd"):
        budget.spent[kind] = float((record.get("spent") or {}).get(kind, 0) or 0)
    return budget


@dataclass
class SectionResult:
    """One planned section as kb accepted it."""

    number: int
    title: str
    body: str
    empty: bool = False
    drafted: int = 0  # factual sentences in the writer's first draft
    drafted_supported: int = 0
    sent_back: int = 0  # sentences returned to the writer with a reason
    removed: int = 0  # sentences still unsupported after the rewrite, taken out
    kept: int = 0  # factual sentences in the file, each cited and checked
    judged: int = 0  # sentences the support judge was asked about
    judge_rejected: int = 0  # ... and called unsupported
    warnings: list = field(default_factory=list)
    convo: list = field(default_factory=list)  # the conversation that wrote it (a snippet repair continues it)
    system: str = ""
    curated: str = ""  # the line naming the passages a reviewer chose for it (kb.engine.check.curated_note)


EMPTY_LINE = "Research found nothing for this section ({why}); it is left empty rather than filled from memory."
# kb.engine.check reads a section as empty by EMPTY_MARK ("Research found nothing"); the rest says what happened.
# No number in it: a number makes a sentence a claim the support check wants cited (the drop has the figures).
BUDGET_LINE = ("Research found nothing for this section within the PART's budget: its {kind} were spent before this "
               "section was written, and it is left empty rather than filled from memory.")


def python_reasons(text: str) -> list[str]:
    """Why the Python code blocks of a text do not parse (kb's check asks the same of the whole file)."""
    reasons = []
    for number, token in enumerate((t for t in parse_blocks(text) if t.type == "fence"), start=1):
        language = (token.info or "").strip().split(maxsplit=1)[0].lower() if (token.info or "").strip() else ""
        if language not in PYTHON:
            continue
        try:
            ast.parse(token.content)
        except (SyntaxError, ValueError) as exc:
            reasons.append(f"python code block {number} does not parse: {getattr(exc, 'msg', exc)}")
    return reasons


def drop_fences(text: str, lines: set[int]) -> str:
    """``text`` without the fenced blocks that open at these (1-based) lines."""
    cut: set[int] = set()
    for token in parse_blocks(text):
        if token.type == "fence" and token.map and token.map[0] + 1 in lines:
            cut.update(range(*token.map))
    kept = "\n".join(line for i, line in enumerate(text.split("\n")) if i not in cut)
    return re.sub(r"\n{3,}", "\n\n", kept)


def drop_unparseable(text: str) -> tuple[str, int]:
    """``text`` without its Python code blocks that do not parse; and how many went."""
    lines = text.split("\n")
    cut: set[int] = set()
    for token in parse_blocks(text):
        if token.type != "fence" or not token.map:
            continue
        language = (token.info or "").strip().split(maxsplit=1)[0].lower() if (token.info or "").strip() else ""
        if language in PYTHON:
            try:
                ast.parse(token.content)
            except (SyntaxError, ValueError):
                cut.update(range(*token.map))
    if not cut:
        return text, 0
    kept = "\n".join(line for i, line in enumerate(lines) if i not in cut)
    return re.sub(r"\n{3,}", "\n\n", kept), sum(1 for t in parse_blocks(text) if t.type == "fence" and t.map and t.map[0] in cut)


class LLMWriter:
    """A Writer (kb.engine.types) backed by a chat model, writing a file section by section.

    Each planned section is written from its own passages (numbered across the PART, so ``[n]`` names one
    passage); every factual sentence is checked against the passages it cites (kb.llm.support); what fails
    goes back to the model once with the reason, and what still fails is removed. A section research found
    nothing for is one line saying so, and the model is never asked to write it. A last pass writes the
    overview from the accepted sections, checked the same way.
    """

    def __init__(self, client: ChatClient, definition: WriterDefinition, settings: ModelSettings, *,
                 max_rewrites: int = 2, prices: dict[str, Price] | None = None, check: CheckFn | None = None,
                 support_rewrites: int = 1, snippets: SnippetRunner | None = None, support_judge: bool = False,
                 smooth: bool = False, relevance_judge: bool = False, passages_per_section: int = 3) -> None:
        self.client = client
        self.engine = client.provider
        self.definition = definition
        self.settings = settings
        self.max_rewrites = max_rewrites
        self.support_rewrites = support_rewrites
        self.prices = prices or {}
        self.check = check or _default_check
        self.snippets = snippets  # runs a text's snippets in the sandbox (None: they are not run before landing)
        self.support_judge = support_judge  # the model judges the sentences the lexical check passed
        self.smooth = smooth  # a last pass over the whole file
        self.relevance_judge = relevance_judge  # the model reads the passages research ranked below its bar
        self.passages_per_section = passages_per_section  # the most it may accept for one section
        # The last draft of a PART that failed kb's check: when the runner's own check loop asks again, it
        # gets that draft back instead of a fresh round of calls (rewrites never multiply).
        self._exhausted: dict[tuple[str, int], Draft] = {}

    async def _ask(self, system: str, convo: list[dict], usage: Usage, spend: PartSpend | None = None):
        reply = await complete_text(
            self.client, system, convo, model=self.settings.model, temperature=self.settings.temperature,
            max_tokens=self.settings.max_tokens, max_continuations=self.settings.max_continuations,
        )
        usage.add(reply)
        if spend is not None and spend.budget is not None:
            spend.budget.spend("tokens", reply.tokens_in + reply.cache_write + reply.cache_read + reply.tokens_out)
            spend.budget.spend("usd", cost_usd(self.prices, self.settings.model, reply.tokens_in, reply.tokens_out,
                                               cache_write=reply.cache_write, cache_read=reply.cache_read,
                                               provider=self.engine) or 0.0)
        return reply

    async def _review(self, text: str, passages: dict[int, str], spend: PartSpend, result: SectionResult, *,
                      trusted: set[str] = frozenset()) -> Review:
        """The lexical verdicts on every factual sentence, then the model's on those that passed (when it judges);
        ``trusted``: sentences already judged, word for word, not asked about again."""
        verdicts = review(text, passages)
        asked = [v for v in verdicts.verdicts if v.supported and v.sentence not in trusted]
        if not self.support_judge or not asked:
            return verdicts
        if not spend.allows():
            result.warnings.append(f"the support judge was not asked ({spend.stopped}); the lexical check's verdicts stand")
            return verdicts
        system, prompt = judge_prompt(asked, passages)
        reply = await self._ask(system, [{"role": "user", "content": prompt}], spend.judge, spend)
        judged = apply_judgement(verdicts, asked, parse_judgement(reply.text, len(asked)))
        result.warnings += judged.notes
        result.judged += judged.judged
        result.judge_rejected += judged.rejected
        return judged.review

    async def _checked(self, system: str, prompt: str, passages: dict[int, str], label: str, usage: Usage,
                       result: SectionResult, spend: PartSpend) -> str:
        """Ask, check every sentence (and the code's syntax), send the reasons back once, remove what still fails."""
        convo = [{"role": "user", "content": prompt}]
        rounds = 0
        while True:
            reply = await self._ask(system, convo, usage, spend)
            result.warnings += reply.notes
            cleaned = clean_section(reply.text, label)
            result.warnings += cleaned.warnings
            verdicts = await self._review(cleaned.body, passages, spend, result)
            if rounds == 0:
                result.drafted = len(verdicts.verdicts)
                result.drafted_supported = len(verdicts.verdicts) - len(verdicts.failing)
            problems = verdicts.reasons + python_reasons(cleaned.body)
            if not problems or rounds >= self.support_rewrites:
                break
            if not spend.allows():
                result.warnings.append(f"{label}: not sent back to the writer ({spend.stopped}); what failed the check "
                                       "is removed")
                break
            rounds += 1
            result.sent_back += len(verdicts.failing)
            convo = [*convo, {"role": "assistant", "content": reply.text or "(empty reply)"},
                     {"role": "user", "content": REWRITE_SECTION + "\n".join(f"- {r}" for r in problems)}]
        result.system, result.convo = system, [*convo, {"role": "assistant", "content": reply.text or "(empty reply)"}]
        return self._settle(cleaned.body, verdicts, label, result)

    def _settle(self, text: str, verdicts, label: str, result: SectionResult) -> str:
        """The text kb keeps: unsupported sentences and Python that does not parse removed, and counted."""
        body, removed = keep_supported(text, {v.sentence for v in verdicts.failing})
        body, bad_code = drop_unparseable(body)
        if removed:
            result.warnings.append(f"{label}: {removed} sentence(s) still unsupported after the rewrite were removed: "
                                   + "; ".join(verdicts.reasons)[:400])
        if bad_code:
            result.warnings.append(f"{label}: {bad_code} Python code block(s) that do not parse were removed")
        result.removed += removed
        result.kept = len(verdicts.verdicts) - len(verdicts.failing)
        return body

    async def _failing_snippets(self, request: WriteRequest, results: list[SectionResult],
                                counts: dict) -> dict[int, list[tuple[int, object]]]:
        """One sandbox run over the sections' snippets: {section number: [(fence line in its body, verdict)]}."""
        filled = [r for r in results if not r.empty and ("```" in r.body or "~~~" in r.body)]
        if self.snippets is None or not filled:
            return {}
        text, spans, line = "", [], 1
        for r in filled:
            lines = r.body.count("\n")
            spans.append((line, line + 2 + lines, r))  # "## title", a blank line, the body, a blank line
            text += f"## {r.title}\n\n{r.body}\n"
            line += 3 + lines
        verdicts = await asyncio.to_thread(self.snippets, f"knowledge/{request.part.target or 'draft.md'}", text)
        counts["run"] += sum(1 for v in verdicts if v.status not in ("not-executable", "skip"))
        counts["skipped"] += sum(1 for v in verdicts if v.status == "skip")
        failing: dict[int, list] = {}
        for v in verdicts:
            if v.failing:
                start, _end, owner = next(span for span in spans if span[0] <= v.line <= span[1])
                failing.setdefault(owner.number, []).append((v.line - start - 1, v))
        return failing

    async def _repair_snippets(self, request: WriteRequest, results: list[SectionResult], passages: dict[int, str],
                               spend: PartSpend) -> dict:
        """Failing snippets go back to their section's writer once, with the sandbox's reason; what still fails
        is removed. Returns the counts for the drop."""
        counts = {"run": 0, "skipped": 0, "failed": 0, "removed": 0}
        failing = await self._failing_snippets(request, results, counts)
        counts["failed"] = sum(len(v) for v in failing.values())
        for result in results:
            if result.number not in failing or not result.convo:
                continue
            if not spend.allows():
                result.warnings.append(f"section {result.number} ({result.title}): its failing snippet was not sent back "
                                       f"to the writer ({spend.stopped})")
                continue
            label = section_label(result.number, result.title)
            reasons = [f"python code block at line {line} of the section fails when kb runs it: {v.reason}"
                       for line, v in failing[result.number]]
            convo = [*result.convo, {"role": "user", "content": REWRITE_SECTION + "\n".join(f"- {r}" for r in reasons)}]
            reply = await self._ask(result.system, convo, spend.sections, spend)
            cleaned = clean_section(reply.text, label)
            result.warnings += [*reply.notes, *cleaned.warnings]
            result.body = self._settle(cleaned.body, await self._review(cleaned.body, passages, spend, result), label,
                                       result)
            if result.kept == 0:
                result.empty = True
                result.body = EMPTY_LINE.format(why="research found passages, but none supported a statement the "
                                                    "writer made about this section") + "\n"
        if failing:
            again = {"run": 0, "skipped": 0}
            still = await self._failing_snippets(request, [r for r in results if r.number in failing], again)
            for result in results:
                if result.number in still:
                    result.body = drop_fences(result.body, {line for line, _v in still[result.number]})
                    counts["removed"] += len(still[result.number])
                    result.warnings.append(
                        f"section {result.number} ({result.title}): {len(still[result.number])} snippet(s) still failing "
                        "in kb's sandbox after the rewrite were removed: " + "; ".join(str(v.reason) for _l, v in still[result.number]))
        return counts

    async def _section(self, request: WriteRequest, section, evidence: list[Evidence], passages: dict[int, str],
                       lines: int | None, spend: PartSpend) -> SectionResult:
        label = section_label(section.number, section.title)
        result = SectionResult(number=section.number, title=section.title, body="")
        if not evidence:
            result.empty = True
            result.body = EMPTY_LINE.format(why=_empty_reason(request, section.number)) + "\n"
            return result
        if not spend.allows():
            # Passages were found, but the PART may not spend more on writing: said plainly, never filled otherwise.
            result.empty = True
            kind = "dollars" if "usd budget" in (spend.stopped or "") else "tokens"
            result.body = BUDGET_LINE.format(kind=kind) + "\n"
            result.warnings.append(f"{label}: not written: {spend.stopped}")
            return result
        system, prompt = render_section_prompt(self.definition, request, section, evidence, lines=lines)
        # kb's line, not the model's: added when the file is assembled, so no rewrite can drop or reword it.
        result.curated = curated_note(request.research.by_section.get(section.number) or [])
        result.body = await self._checked(system, prompt, passages, label, spend.sections, result, spend)
        if result.kept == 0:
            # The passages supported nothing the writer said: an empty section, said plainly, not a padded one.
            result.empty = True
            result.body = EMPTY_LINE.format(why="research found passages, but none supported a statement the writer "
                                                "made about this section") + "\n"
        return result

    async def _overview(self, request: WriteRequest, results: list[SectionResult], passages: dict[int, str],
                        spend: PartSpend) -> tuple[str, SectionResult]:
        outcome = SectionResult(number=-1, title="Overview", body="")
        filled = [(f"Section {r.number}: {r.title}" if r.number else r.title, r.body) for r in results if not r.empty]
        if not filled:
            outcome.body = "Research found nothing for any planned section of this PART; each section below says so.\n"
            return outcome.body, outcome
        body = ""
        if spend.allows():
            system, prompt = render_overview_prompt(request, filled)
            body = await self._checked(system, prompt, passages, "the overview", spend.overview, outcome, spend)
        else:
            outcome.warnings.append(f"the overview was not written by the model ({spend.stopped})")
        if outcome.kept == 0:
            # No checked overview: the first checked sentence of each filled section stands in (cited, supported).
            firsts = [next((s.text for s in prose_sentences(r.body) if s.factual and s.cites), None)
                      for r in results if not r.empty]
            body = " ".join(f for f in firsts[:3] if f) + "\n"
        outcome.body = body
        return body, outcome

    async def write(self, request: WriteRequest) -> Draft:
        """Write the file section by section, check every sentence, and assemble it; raises ProviderError on faults."""
        key = (request.plan_path, request.part.number)
        if request.feedback and key in self._exhausted:
            # Its tokens were counted when it was written; handing it back again costs nothing.
            return replace(self._exhausted.pop(key), tokens_in=0, tokens_out=0, cost_usd=None)
        part = request.part
        sections = part.sections or [Section(number=0, title=part.title, details="", line=0)]
        spend = PartSpend(budget=part_budget(request.research))
        for usage in spend.stages().values():
            usage.provider = self.engine
        relevance = await self._judge_relevance(request, sections, spend)
        if relevance:
            accepted = {n: r.accepted for n, r in relevance.items() if r.accepted}
            request = replace(request, research=with_accepted(request.research, accepted))
        evidence, by_section = number_passages(request.research)
        passages = {e.id: e.text for e in evidence}
        lines = (part.planned_lines // max(1, len(sections))) if part.planned_lines else None
        if spend.budget is None:
            results = list(await asyncio.gather(*(self._section(request, s, by_section.get(s.number, []), passages,
                                                                lines, spend) for s in sections)))
        else:
            # One section after the other, so each starts only if what the others really spent leaves room.
            results = [await self._section(request, s, by_section.get(s.number, []), passages, lines, spend)
                       for s in sections]
        snippet_counts = await self._repair_snippets(request, results, passages, spend)
        overview, outcome = await self._overview(request, results, passages, spend)
        smoothing = await self._smooth(request, outcome, results, passages, spend) if self.smooth else None
        body = self._assemble(part, outcome.body or overview, results)
        cited = cited_numbers(body)
        body = body.rstrip("\n") + "\n\n" + sources_section(evidence, cited)
        model_name = self.settings.model
        stages = {name: u for name, u in spend.stages().items()
                  if u.calls or name in ("write_sections", "write_overview")}
        # The PART's totals include research's own model calls (its questions), listed apart in the drop's usage.
        asked = (request.research.log.get("usage") or {}).get("research") or {}
        tokens_in = sum(u.prompt for u in stages.values()) + int(asked.get("input", 0))
        tokens_out = sum(u.output for u in stages.values()) + int(asked.get("output", 0))
        costs = [u.cost(self.prices, model_name) for u in stages.values()]
        cost = None if None in costs else round(sum(costs) + float(asked.get("cost_usd", 0.0)), 6)
        warnings = list(dict.fromkeys([*(n for r in relevance.values() for n in r.notes),
                                       *(w for r in [*results, outcome] for w in r.warnings)]))
        cached = sum(u.cached for u in stages.values())
        if cached:
            calls = sum(u.calls for u in stages.values())
            warnings.append(f"{cached} of {calls} LLM replies came from the cache (their tokens are not counted again)")
        checked = [*results, outcome]
        drafted = sum(r.drafted for r in checked)
        supported = sum(r.drafted_supported for r in checked)
        record = {
            "evidence": [e.record() for e in evidence],
            "support": {
                "sentences": drafted, "supported": supported, "rate": round(supported / drafted, 4) if drafted else None,
                "sent_back": sum(r.sent_back for r in checked), "removed": sum(r.removed for r in checked),
                "rewritten": max(0, sum(r.sent_back for r in checked) - sum(r.removed for r in checked)),
                "kept": sum(r.kept for r in checked),
                **({"judged": sum(r.judged for r in checked), "judge_rejected": sum(r.judge_rejected for r in checked)}
                   if self.support_judge else {}),
            },
            **({"smooth": smoothing} if smoothing is not None else {}),
            **({"relevance": {"sections": sum(1 for r in relevance.values() if r.asked),
                              "passages": sum(r.asked for r in relevance.values()),
                              "accepted": sum(len(r.accepted) for r in relevance.values()),
                              # what the model said of each passage: bench/bench_relevance.py --drops scores it
                              "verdicts": {str(n): r.judged for n, r in relevance.items() if r.judged}}}
               if self.relevance_judge else {}),
            **({"snippets": snippet_counts} if self.snippets is not None else {}),
            "usage": {name: u.record(self.prices, model_name) for name, u in stages.items()},
        }
        if spend.budget is not None:
            research_budget = (request.research.log or {}).get("budget") or {}
            record["budget"] = {**research_budget, "spent": {**(research_budget.get("spent") or {}),
                                                              "tokens": int(spend.budget.spent["tokens"]),
                                                              "usd": round(spend.budget.spent["usd"], 6)},
                                **({"writing_stopped": spend.stopped} if spend.stopped else {})}
        if spend.stopped:
            warnings.append(f"writing stopped early: {spend.stopped}")
        draft = Draft(
            title=part.title, body=body, sources=[e.source_ref() for e in evidence if e.id in cited],
            engine=self.engine, model=model_name, tokens_in=tokens_in, tokens_out=tokens_out,
            cost_usd=cost, warnings=warnings,
            sections_empty=[f"Section {r.number}: {r.title}" if r.number else r.title for r in results if r.empty],
            evidence=record,
        )
        reasons = self.check(draft, request)
        if reasons:
            draft.warnings.append(f"still failing kb's check: {'; '.join(reasons)}")
            self._exhausted[key] = draft
        else:
            self._exhausted.pop(key, None)
        return draft

    async def _judge_relevance(self, request: WriteRequest, sections: list[Section],
                               spend: PartSpend) -> dict[int, RelevanceResult]:
        """Per section research left empty, the passages it ranked below its bar that the model calls on topic."""
        asked = [s for s in sections if self.relevance_judge and not request.research.by_section.get(s.number)
                 and request.research.candidates.get(s.number)]
        file_title = request.part.title

        async def judge(section: Section) -> RelevanceResult:
            candidates = request.research.candidates[section.number]
            if not spend.allows():
                label = section_label(section.number, section.title)
                return RelevanceResult(notes=[f"{label}: the relevance judge was not asked ({spend.stopped})"])
            if not section.number:  # a PART without sections: research asked its searches
                section = replace(section, details=", ".join(request.part.searches))
            system, prompt = relevance_prompt(file_title, section, candidates)
            reply = await self._ask(system, [{"role": "user", "content": prompt}], spend.relevance, spend)
            return apply_relevance(section, candidates, reply.text, self.passages_per_section)

        if spend.budget is None:
            results = await asyncio.gather(*(judge(s) for s in asked))
        else:
            results = [await judge(s) for s in asked]  # each asks only if what the others spent leaves room
        return {s.number: r for s, r in zip(asked, results)}

    async def _smooth(self, request: WriteRequest, outcome: SectionResult, results: list[SectionResult],
                      passages: dict[int, str], spend: PartSpend) -> dict | None:
        """One pass over the whole file that may reword it to read as one; each section it returns is checked like a
        draft (its unsupported sentences removed) and kept only if it kept every citation and code block."""
        pieces = [("Overview", outcome)] if outcome.kept else []
        pieces += [(f"Section {r.number}: {r.title}" if r.number else r.title, r) for r in results if not r.empty]
        if not pieces:
            return None
        if not spend.allows():
            outcome.warnings.append(f"the whole-file pass was not made ({spend.stopped})")
            return None
        headings = [h for h, _r in pieces]
        nonce = _nonce(*(h + "\0" + r.body for h, r in pieces))
        quoted = "\n".join(data_block(nonce, f"## {h}", [r.body]) for h, r in pieces)
        prompt = SMOOTH_PROMPT.format(title=request.part.title, file=quoted)
        reply = await self._ask(SYSTEM_PROMPT.format(nonce=nonce), [{"role": "user", "content": prompt}], spend.smooth,
                                spend)
        bodies = _split_by_headings(reply.text, headings)
        counts = {"sections": len(pieces), "rewritten": 0, "kept_as_was": len(pieces), "removed": 0}
        if bodies is None:
            outcome.warnings.append("the whole-file pass changed or lost the file's headings; every section keeps its "
                                    "checked text")
            return counts
        for (heading, result), new in zip(pieces, bodies):
            before = {s.text for s in prose_sentences(result.body)}
            label = f"the whole-file pass, {heading}"
            cleaned = clean_section(new, label)
            probe = SectionResult(number=result.number, title=result.title, body="")
            verdicts = await self._review(cleaned.body, passages, spend, probe, trusted=before)
            outcome.warnings += [*cleaned.warnings, *probe.warnings]
            kept, removed = keep_supported(cleaned.body, {v.sentence for v in verdicts.failing})
            lost = cited_numbers(result.body) - cited_numbers(kept)
            same_code = _fences(kept) == _fences(result.body)
            supported = len(verdicts.verdicts) - len(verdicts.failing)
            if lost or not same_code or supported == 0 or kept.strip() == result.body.strip():
                if lost or not same_code:
                    outcome.warnings.append(f"{label}: " + (f"lost the citation(s) {sorted(lost)}" if lost else
                                                            "changed a code block") + "; the section keeps its checked text")
                continue
            result.body, result.kept = kept, supported
            result.judged += probe.judged
            result.judge_rejected += probe.judge_rejected
            if removed:
                outcome.warnings.append(f"{label}: {removed} sentence(s) its passages do not support were removed: "
                                        + "; ".join(verdicts.reasons)[:400])
            counts["rewritten"] += 1
            counts["kept_as_was"] -= 1
            counts["removed"] += removed
        return counts

    @staticmethod
    def _assemble(part, overview: str, results: list[SectionResult]) -> str:
        out = [f"# {part.title}", "", "## Overview", "", overview.strip(), ""]
        for r in results:
            if r.number:
                out += [f"## Section {r.number}: {r.title}", ""]
            if r.curated and not r.empty:
                out += [r.curated, ""]
            out += [r.body.strip(), ""]
        return "\n".join(out)


def _nonce(*parts: str) -> str:
    from kb.llm.prompt import _section_nonce

    return _section_nonce(*parts)


def _fences(text: str) -> list[tuple[str, str]]:
    """A text's code blocks (info string, content), in order."""
    return [((t.info or "").strip(), t.content) for t in parse_blocks(text) if t.type == "fence"]


def _split_by_headings(text: str, headings: list[str]) -> list[str] | None:
    """The bodies under exactly these ``## `` headings, in this order; None when the reply has other headings."""
    parts = re.split(r"(?m)^## +(.+?)\s*$", text.strip())
    found = [h.strip() for h in parts[1::2]]
    if found != headings:
        return None
    return [body.strip("\n") + "\n" for body in parts[2::2]]


def cited_numbers(body: str) -> set[int]:
    """The passage numbers the prose of a body cites (code is not prose)."""
    from kb.engine.check import CITATION, prose_lines

    return {int(n) for _no, line in prose_lines(body, parse_blocks(body))
            for match in CITATION.finditer(line) for n in re.findall(r"\d+", match.group(1))}


def _empty_reason(request: WriteRequest, number: int) -> str:
    """What research said about a section it found nothing for."""
    for warning in request.research.warnings:
        match = re.match(rf"section {number} \(.*?\): (.+)$", warning)
        if match:
            return match.group(1)
    return "no passage was retrieved for it"


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
    snippets = None
    if config.run.run_snippets:
        from kb.snippets.draft import validate_draft_snippets
        from kb.snippets.profiles import load_profile

        profile = load_profile(workspace.validators_dir, config.validate_.profile)

        def snippets(name: str, text: str) -> list:
            return validate_draft_snippets(text, profile, name=name)
    return LLMWriter(client, definition, settings, max_rewrites=config.run.max_rewrites, prices=config.prices, check=check,
                     snippets=snippets, support_judge=config.run.support_judge, smooth=config.run.smooth,
                     relevance_judge=config.run.relevance_judge, passages_per_section=config.run.passages_per_section)
