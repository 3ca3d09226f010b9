"""The research questions of a section, asked by the model (``runners/researcher.md``), or, with no model,
taken from the plan: the section's title and details, and the PART's own searches."""

from __future__ import annotations

from dataclasses import dataclass

from kb.llm.base import ChatClient
from kb.llm.complete import complete_text
from kb.llm.reply import json_list
from kb.runners import RunnerDefinition


@dataclass
class Question:
    query: str
    perspective: str
    section: int


def parse_questions(text: str, section: int, limit: int) -> list[Question]:
    """Questions from a reply: a JSON list of {perspective, query} (or of strings); lines as a last resort."""
    items = json_list(text) or []
    if not items:
        items = [line.strip(" -*\t\"'") for line in text.splitlines() if len(line.split()) >= 2][:limit]
    out: list[Question] = []
    for item in items:
        if isinstance(item, dict):
            query, perspective = str(item.get("query") or "").strip(), str(item.get("perspective") or "").strip()
        else:
            query, perspective = str(item).strip(), ""
        if query and len(query) <= 300 and query.lower() not in {q.query.lower() for q in out}:
            out.append(Question(query=query, perspective=perspective, section=section))
    return out[:limit]


class QuestionPlanner:
    """Asks the research model for a section's questions and follow-ups, counting its tokens."""

    def __init__(self, client: ChatClient | None, definition: RunnerDefinition, *, model: str | None,
                 temperature: float | None, max_tokens: int, perspectives: list[str]) -> None:
        self.client = client
        self.definition = definition
        self.model = model
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.perspectives = perspectives

    @property
    def uses_model(self) -> bool:
        return self.client is not None and bool(self.model)

    async def ask(self, part, section, *, n: int, plan_title: str | None = None, found: list[str] | None = None,
                  follow_up: bool = False) -> tuple[list[Question], int, int, list[str]]:
        """(questions, tokens in, tokens out, notes). Without a model: the plan's words, no tokens.

        Raises ProviderError when the model gave no answer (its retries spent)."""
        if not self.uses_model:
            base = " ".join(x for x in (section.title, section.details) if x).strip()
            queries = [base] if not follow_up else [f"{section.title} {w}" for w in (section.details or "").split(",") if w.strip()][:n]
            return [Question(q, "the plan", section.number) for q in queries if q], 0, 0, []
        prompt = self.definition.render(part=part, section=section, n=n, perspectives=self.perspectives,
                                        found=found or [], follow_up=follow_up, plan_title=plan_title)
        system = ("You plan web research for a technical knowledge base. You write search queries only; you never "
                  "answer them. Reply with the JSON list asked for and nothing else.")
        reply = await complete_text(self.client, system, [{"role": "user", "content": prompt}], model=self.model,
                                    temperature=self.temperature, max_tokens=self.max_tokens, max_continuations=0)
        questions = parse_questions(reply.text, section.number, n)
        notes = [] if questions else [f"section {section.number}: the research model's reply held no questions"]
        return questions, reply.tokens_in + reply.cache_write + reply.cache_read, reply.tokens_out, notes
