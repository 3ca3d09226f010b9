"""A whole reply from a chat client: continued past the token limit, reasoning stripped, usage summed."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from kb.llm.base import ChatClient
from kb.net.retry import ProviderError

CONTINUE = (
    "Your reply was cut off by the output token limit. Continue exactly where it stopped, "
    "without repeating anything and without any preamble."
)

_THINK_BLOCK = re.compile(r"<(think|thinking|reasoning)>.*?</\1>\s*", re.S | re.I)
_THINK_OPEN = re.compile(r"<(think|thinking|reasoning)>", re.I)
_THINK_CLOSE = re.compile(r"</(think|thinking|reasoning)>\s*", re.I)


def strip_thinking(text: str) -> str:
    """Remove reasoning models' ``<think>...</think>`` blocks (also an unclosed one, or a bare closing tag)."""
    text = _THINK_BLOCK.sub("", text)
    # Some chat templates open the block in the prompt, so only "...</think>" reaches us.
    close = _THINK_CLOSE.search(text)
    if close and not _THINK_OPEN.search(text[: close.start()]):
        text = text[close.end():]
    # A block never closed (reasoning cut short) is reasoning to the end.
    opened = _THINK_OPEN.search(text)
    if opened:
        text = text[: opened.start()]
    return text.strip()


@dataclass
class Reply:
    """A finished reply and what it cost. Tokens count only requests sent now (cached replies were paid before)."""

    text: str
    model: str | None
    tokens_in: int = 0
    tokens_out: int = 0
    cache_write: int = 0
    cache_read: int = 0
    calls: int = 0
    cached_calls: int = 0
    continuations: int = 0
    notes: list[str] = field(default_factory=list)


async def complete_text(
    client: ChatClient,
    system: str,
    messages: list[dict[str, str]],
    *,
    model: str | None,
    temperature: float | None,
    max_tokens: int,
    max_continuations: int = 2,
) -> Reply:
    """Ask until the model stops on its own; a reply still cut off after the continuations is an error."""
    reply = Reply(text="", model=model)
    so_far = ""
    convo = list(messages)
    for round_ in range(max_continuations + 1):
        completion = await client.complete(system, convo, model=model, temperature=temperature, max_tokens=max_tokens)
        reply.calls += 1
        reply.model = completion.model or reply.model
        if completion.cached:
            reply.cached_calls += 1
        else:
            reply.tokens_in += completion.tokens_in
            reply.tokens_out += completion.tokens_out
            reply.cache_write += completion.cache_write
            reply.cache_read += completion.cache_read
        if client.supports_prefill:
            # The continuation picks up from the (right-stripped) prefill we sent.
            so_far = so_far.rstrip() + completion.text if round_ else completion.text
        else:
            so_far += completion.text
        if completion.finish != "length":
            if completion.finish not in ("stop",):
                reply.notes.append(f"the model stopped with reason {completion.finish!r}")
            reply.text = strip_thinking(so_far)
            return reply
        reply.continuations += 1
        if client.supports_prefill:
            # Anthropic rejects a final assistant turn that ends in whitespace.
            convo = [*messages, {"role": "assistant", "content": so_far.rstrip()}]
        else:
            convo = [*messages, {"role": "assistant", "content": so_far}, {"role": "user", "content": CONTINUE}]
    raise ProviderError(
        f"{client.what}: the reply was still cut off by the token limit (max_tokens={max_tokens}) after "
        f"{max_continuations} continuations; nothing was saved (raise max_tokens)"
    )
