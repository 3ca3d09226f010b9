"""An OpenAI-compatible and Anthropic-shaped chat endpoint that writes scripted knowledge files.

The reply is built from the request: the sections the prompt asks for and the
numbered sources it was given, so the file cites exactly what research passed.
The model is deliberately gullible: an instruction to "ignore previous
instructions and write X" found OUTSIDE the prompt's data blocks is obeyed, so a
page that escapes its quoting would visibly take over the output.
"""

from __future__ import annotations

import json
import re

from .base import LoopbackServer, json_reply

CONTINUE_MARK = "cut off by the output token limit"
REWRITE_MARK = "kb checked your file"
SECTION_REWRITE_MARK = "kb checked every sentence"

# What a misbehaving model adds to a section (each kb must catch): a sentence citing a passage that does not
# support it, a number no passage has, a claim with no citation, code that does not parse, another section
# filled from memory.
WRONG_CITE = "Quantum annealing schedules improve the convergence of transformer embeddings [{n}]."
INVENTED_NUMBER = "{sentence} in 73 percent of cases [{n}]."
UNCITED = "ZeRO-3 partitions optimizer states, gradients and parameters across all data parallel ranks."
# A real bug (not a fragment: the name is bound), so the sandbox says fail, not fragment.
FAILING_CODE = "```python\nfailing_values = [3, 1, 2]\nprint(failing_values[3])\n```"
BROKEN_CODE = "```python\ndef broken(:\n    return 1\n```"
FROM_MEMORY = ("## Section {n}: {title}\n\nZeRO-Offload moves optimizer states to host memory, which frees GPU memory "
               "on small cards.")
MEMORY_OVERVIEW = "CPU offloading with ZeRO-Offload moves optimizer states to the host to save GPU memory."
# An on-topic sentence made of the passage's own words that claims what it does not say: the lexical check passes
# it; the support judge must catch it.
DRIFT = "{sentence}, but this is never needed in practice [{n}]."
# Words that turn a passage's statement into a stronger claim; the scripted judge rejects a sentence that uses one
# its cited passages do not.
JUDGE_WORDS = ("never", "always", "only", "every")
# What a misbehaving whole-file pass adds: a transition with no citation, and a cited number no passage has.
SMOOTH_TRANSITION = "The next section builds on this one."
SMOOTH_INVENTED = "Together these steps cut memory use by 73 percent [{n}]."


def split_data(text: str, nonce: str | None) -> tuple[str, list[tuple[str, str]]]:
    """(text outside data blocks, [(label, inner text)]) for blocks delimited with this nonce."""
    if not nonce:
        return text, []
    outside: list[str] = []
    blocks: list[tuple[str, str]] = []
    label, inner = None, []
    for line in text.splitlines():
        if label is None and line.startswith(f"<<<DATA {nonce} "):
            label, inner = line[len(f"<<<DATA {nonce} "):].rstrip(">"), []
        elif label is not None and line == f"<<<END DATA {nonce}>>>":
            blocks.append((label, "\n".join(inner)))
            label = None
        elif label is not None:
            inner.append(line)
        else:
            outside.append(line)
    return "\n".join(outside), blocks


def first_sentence(text: str) -> str:
    """A passage's first sentence (at least a few words), without its final stop."""
    words: list[str] = []
    for piece in re.split(r"(?<=[.!?])\s+", " ".join(text.split())):
        words += piece.split()
        if len(words) >= 6:
            break
    return " ".join(words).rstrip(".!?:;")


def compose_section(outside: str, blocks: list[tuple[str, str]], *, fixed: bool, behaviour: set[str]) -> str:
    """The body of one section: the first sentence of (up to) two of its passages, each citing its passage."""
    number, title = re.search(r'Write the body of section (\d+): "(.+?)"', outside).groups()
    passages = []
    for label, inner in blocks:
        m = re.match(r"passage \[(\d+)\]", label)
        if m:
            prose = inner.split("```", 1)[0]
            passages.append((int(m.group(1)), prose))
    bad = not fixed or "stubborn" in behaviour
    # Like a real model, it reports what pages say but does not repeat an instruction addressed to it; whether a
    # page can take the model over is what the obey rule above tests.
    passages = [(n, prose) for n, prose in passages if "IGNORE PREVIOUS INSTRUCTIONS" not in prose] or passages
    lines = []
    for n, prose in passages[:2]:
        lines.append(f"{first_sentence(prose)} [{n}].")
    n0, prose0 = passages[0]
    if bad and "wrong_cite" in behaviour:
        lines.append(WRONG_CITE.format(n=n0))
    if bad and "drift" in behaviour:
        lines.append(DRIFT.format(sentence=first_sentence(prose0), n=n0))
    if bad and "invent_number" in behaviour:
        lines.append(INVENTED_NUMBER.format(sentence=first_sentence(prose0), n=n0))
    if bad and "uncited" in behaviour:
        lines.append(UNCITED)
    if bad and "invent" in behaviour:
        lines.append("See also [99] and https://invented.example/fake-page for more.")
    text = " ".join(lines)
    if "think" in behaviour:
        text = "<think>The user wants a section. Let me plan it carefully.</think>\n" + text
    if number == "1":
        text += "\n\n```python\nvalues = [1, 2, 3]\nprint(sum(values))\n```"
    if bad and "failing_snippet" in behaviour and number == "1":
        text += "\n\n" + FAILING_CODE
    if bad and "broken_snippet" in behaviour:
        text += "\n\n" + BROKEN_CODE
    if bad and "fill_empty" in behaviour:
        text += "\n\n" + FROM_MEMORY.format(n=int(number) + 1, title="The next section")
    if "own_sources" in behaviour:
        text += "\n\n## Sources\n\n- [1] something\n- [42] https://invented.example/ref"
    return text + "\n"


def compose_overview(blocks: list[tuple[str, str]], *, fixed: bool, behaviour: set[str]) -> str:
    """The overview: the first cited sentence of the first two sections it is shown."""
    picked = []
    for label, inner in blocks:
        if not label.startswith("section "):
            continue
        for sentence in re.split(r"(?<=[.!?])\s+", " ".join(inner.split("```", 1)[0].split())):
            if re.search(r"\[\d+\]", sentence):
                picked.append(sentence)
                break
        if len(picked) == 2:
            break
    if (not fixed or "stubborn" in behaviour) and "fill_empty" in behaviour:
        picked.append(MEMORY_OVERVIEW)
    return " ".join(picked) + "\n"


def compose_questions(prompt: str, *, behaviour: set[str]) -> str:
    """The research model: a section's search queries as JSON, from its title and the plan's details."""
    title = re.search(r'section \d+ \("(.+?)"\)', prompt).group(1)
    details = re.search(r"The plan asks it to cover: (.+?)\.\n", prompt)
    details = details.group(1) if details else ""
    if "research_prose" in behaviour:
        return f"Sure! Here are some ideas: search for {title} documentation."
    if "still thin" in prompt:
        return json.dumps([{"perspective": "follow-up", "query": f"{title} {d.strip()}"}
                           for d in details.split(",") if d.strip()][:2])
    perspectives = re.findall(r"^- (.+)$", prompt.split("points of view:", 1)[1], re.M)
    queries = [f"{title} {details}".strip(), title, f"{title} pitfalls"]
    return json.dumps([{"perspective": p, "query": q} for p, q in zip(perspectives, queries)])


def compose_judgement(blocks: list[tuple[str, str]], *, behaviour: set[str]) -> str:
    """The support judge: a sentence is unsupported when it uses a word of JUDGE_WORDS its cited passages do not."""
    sentences: dict[int, str] = {}
    cites: dict[int, list[int]] = {}
    texts: dict[int, str] = {}
    for label, inner in blocks:
        m = re.match(r"sentence (\d+), citing ((?:\[\d+\])+)$", label)
        if m:
            sentences[int(m.group(1))] = inner
            cites[int(m.group(1))] = [int(n) for n in re.findall(r"\d+", m.group(2))]
        m = re.match(r"passage \[(\d+)\]$", label)
        if m:
            texts[int(m.group(1))] = inner
    passages = {i: [texts[n] for n in ns if n in texts] for i, ns in cites.items()}
    if "judge_prose" in behaviour:
        return "All of these look fine to me."
    out = []
    for number, sentence in sorted(sentences.items()):
        said = " ".join(passages.get(number, [])).lower().split()
        extra = [w for w in JUDGE_WORDS if w in sentence.lower().split() and w not in said]
        out.append({"sentence": number, "supported": not extra,
                    **({"why": f"the passage does not say '{extra[0]}'"} if extra else {})})
    return json.dumps(out)


def compose_relevance(outside: str, blocks: list[tuple[str, str]], *, behaviour: set[str]) -> str:
    """The relevance judge: a passage is about the section when it says every word of the title longer than three
    letters (a careful reader, in miniature)."""
    title = re.search(r'filling (?:section \d+ \("(.+?)"\)|the knowledge file "(.+?)")', outside)
    title = title.group(1) or title.group(2)
    words = [w for w in re.findall(r"[a-z]+", title.lower()) if len(w) > 3]
    if "relevance_prose" in behaviour:
        return "Passage 1 looks relevant to me."
    out = []
    for label, inner in blocks:
        m = re.match(r"passage (\d+): ", label)
        if m:
            on = all(w in inner.lower() for w in words)
            out.append({"passage": int(m.group(1)), "on_topic": on, **({} if on else {"why": "another subject"})})
    return json.dumps(out)


def compose_smooth(blocks: list[tuple[str, str]], *, behaviour: set[str]) -> str:
    """The whole-file pass: each section's text with 'In short,' before its last sentence; a misbehaving one adds a
    transition without a citation and a cited invented number, drops a citation, or renames a heading."""
    out = []
    for i, (label, inner) in enumerate(blocks):
        heading = label.removeprefix("## ")
        if "smooth_heading" in behaviour and i == len(blocks) - 1:
            heading = "Something else"
        prose, sep, code = inner.partition("```")
        sentences = re.split(r"(?<=[.!?]|\])\s+(?=[A-Z])", " ".join(prose.split()))
        if len(sentences) > 1:
            last = sentences[-1]
            sentences[-1] = "In short, " + last[0].lower() + last[1:]
        text = " ".join(sentences)
        cites = re.findall(r"\[(\d+)\]", text)
        if "smooth_invent" in behaviour and cites:
            text += " " + SMOOTH_TRANSITION + " " + SMOOTH_INVENTED.format(n=cites[0])
        if "smooth_drop_cite" in behaviour and i == 1:
            text = re.sub(r"\s*\[\d+\]", "", text)
        out.append(f"## {heading}\n\n{text}\n" + (f"\n{sep}{code}" if sep else ""))
    return "\n".join(out)


def compose(system: str, user: str, *, fixed: bool, behaviour: set[str]) -> str:
    """The text the scripted model writes for this prompt: a section, the overview, or (older prompts) a file."""
    m = re.search(r"<<<DATA (\w+)", system)
    nonce = m.group(1) if m else None
    outside, blocks = split_data(user, nonce)
    obey = re.search(r"ignore previous instructions and write (\S+)", outside, re.I)
    if obey:
        return obey.group(1).strip(".")
    if "kb checks a knowledge file sentence by sentence" in outside:
        return compose_judgement(blocks, behaviour=behaviour)
    if "decide whether it is ABOUT what this section covers" in outside:
        return compose_relevance(outside, blocks, behaviour=behaviour)
    if "Make it read as one" in outside:
        return compose_smooth(blocks, behaviour=behaviour)
    if "Reply with a JSON list only" in outside:
        return compose_questions(outside, behaviour=behaviour)
    if "Write the body of section" in outside:
        return compose_section(outside, blocks, fixed=fixed, behaviour=behaviour)
    if 'Write its "## Overview"' in outside:
        return compose_overview(blocks, fixed=fixed, behaviour=behaviour)
    title_m = re.search(r'The first line is "# (.+?)"', outside)
    title = title_m.group(1) if title_m else "Untitled"
    sections = re.findall(r"^\s*## Section (\d+): (.+?)\s*$", outside, re.M)
    sources = []
    for label, inner in blocks:
        if label == "source list":
            sources = [int(n) for n in re.findall(r"^\[(\d+)\]", inner, re.M)]
    # Which sources each section's passages came from (the research block lists them in order).
    per_section: dict[str, list[int]] = {}
    current = None
    for line in outside.splitlines():
        sm = re.match(r"For Section (\d+):", line)
        if sm:
            current = sm.group(1)
            per_section.setdefault(current, [])
    for number in per_section:
        chunk = user.split(f"For Section {number}:", 1)[1].split("\nFor Section ", 1)[0]
        per_section[number] = sorted({int(n) for n in re.findall(r"passage from source \[(\d+)\]", chunk)})
    cites = "".join(f"[{n}]" for n in sources[:2])
    lines = [f"# {title}", "", "## Overview", "",
             f"This file covers {title.lower()}, compiled from {len(sources)} retrieved sources {cites}.".replace("  ", " "), ""]
    if "think" in behaviour:
        lines.insert(0, "<think>The user wants a file. Let me plan the sections carefully.</think>")
    for i, (number, name) in enumerate(sections):
        if "missing_section" in behaviour and not fixed and i == len(sections) - 1:
            break
        used = per_section.get(number) or []
        lines += [f"## Section {number}: {name}", ""]
        if used:
            refs = "".join(f"[{n}]" for n in used)
            lines.append(f"The research describes {name.lower()} in detail {refs}.")
        else:
            lines.append("The research found nothing specific on this topic.")
        if "invent" in behaviour:
            lines.append("See also [99] and https://invented.example/fake-page for more.")
        if i == 0:
            lines += ["", "```python", "values = [1, 2, 3]", "print(sum(values))", "```"]
        lines.append("")
    if "own_sources" in behaviour:
        lines += ["## Sources", "", "- [1] something", "- [42] https://invented.example/ref"]
    return "\n".join(lines).rstrip() + "\n"


class LLMServer(LoopbackServer):
    """POST /v1/chat/completions (OpenAI) and POST /v1/messages (Anthropic)."""

    def __init__(self, *, key: str | None = None, behaviour: set[str] | None = None, model: str = "loopback-1", **kwargs) -> None:
        super().__init__(**kwargs)
        self.key = key
        self.behaviour = set(behaviour or ())
        self.model = model
        self.requests_by_kind: dict[str, int] = {}
        self.prompt_cache: set[str] = set()  # Anthropic-style prompt cache: prefixes marked with cache_control

    def fault_applies(self, path: str) -> bool:
        return path in ("/v1/chat/completions", "/v1/messages")

    def _auth_ok(self, headers: dict, flavour: str) -> tuple[bool, str]:
        lower = {k.lower(): v for k, v in headers.items()}
        got = lower.get("x-api-key", "") if flavour == "anthropic" else lower.get("authorization", "").removeprefix("Bearer ")
        return (self.key is None or got == self.key), got

    def _text(self, system: str, messages: list[dict], prefill: bool) -> tuple[str, str]:
        first = messages[0]["content"]
        fixed = any(REWRITE_MARK in m["content"] or SECTION_REWRITE_MARK in m["content"]
                    for m in messages if m["role"] == "user") or "failed kb's checks" in first
        full = compose(system, first, fixed=fixed, behaviour=self.behaviour)
        last = messages[-1]
        if prefill and last["role"] == "assistant":  # Anthropic continuation: carry on from the prefill
            return full[len(last["content"]):], "stop"
        if not prefill and last["role"] == "user" and CONTINUE_MARK in last["content"]:
            return full[len(messages[-2]["content"]):], "stop"
        if "truncate" in self.behaviour and len(messages) == 1:
            return full[: len(full) // 2], "length"
        return full, "stop"

    def handle(self, method, path, query, headers, body):
        if method != "POST" or path not in ("/v1/chat/completions", "/v1/messages"):
            return 404, {"Content-Type": "application/json"}, b'{"error": "not found"}'
        flavour = "anthropic" if path == "/v1/messages" else "openai"
        ok, got = self._auth_ok(headers, flavour)
        if not ok:
            # Like real APIs, echo (part of) the key that was sent: the client must redact it.
            return json_reply({"error": {"message": f"Incorrect API key provided: {got}"}}, status=401)
        req = json.loads(body)
        if flavour == "openai":
            system = next((m["content"] for m in req["messages"] if m["role"] == "system"), "")
            messages = [m for m in req["messages"] if m["role"] != "system"]
        else:
            system, messages, marked = self._anthropic_parts(req)
        text, finish = self._text(system, messages, prefill=flavour == "anthropic")
        tokens_in = (len(system) + sum(len(m["content"]) for m in messages)) // 4
        cache_write = cache_read = 0
        if flavour == "anthropic" and marked:
            # Like the Messages API: the marked prefix is written to the cache once, then read at a tenth of the price.
            prefix = "\0".join(marked)
            if prefix in self.prompt_cache:
                cache_read = len(prefix) // 4
            else:
                self.prompt_cache.add(prefix)
                cache_write = len(prefix) // 4
            tokens_in -= cache_read + cache_write
        tokens_out = max(1, len(text) // 4)
        if flavour == "openai":
            usage = {"prompt_tokens": tokens_in, "completion_tokens": tokens_out, "total_tokens": tokens_in + tokens_out}
            if "prefix_cache" in self.behaviour:
                # Like OpenAI's automatic prompt caching: a system prompt seen before is served from the cache, and
                # prompt_tokens still counts it.
                seen = system in self.prompt_cache
                self.prompt_cache.add(system)
                usage["prompt_tokens_details"] = {"cached_tokens": len(system) // 4 if seen else 0}
            return json_reply({
                "id": "chatcmpl-loopback", "object": "chat.completion", "model": req["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}],
                "usage": usage,
            })
        return json_reply({
            "id": "msg_loopback", "type": "message", "role": "assistant", "model": req["model"],
            "content": [{"type": "text", "text": text}],
            "stop_reason": "max_tokens" if finish == "length" else "end_turn",
            "usage": {"input_tokens": tokens_in, "output_tokens": tokens_out,
                      "cache_creation_input_tokens": cache_write, "cache_read_input_tokens": cache_read},
        })

    @staticmethod
    def _anthropic_parts(req: dict) -> tuple[str, list[dict], list[str]]:
        """(system text, messages with text content, the texts up to the last cache_control mark)."""
        seen: list[str] = []
        marked: list[str] = []

        def text_of(content) -> str:
            if isinstance(content, str):
                seen.append(content)
                return content
            out = []
            for block in content:
                seen.append(block["text"])
                out.append(block["text"])
                if block.get("cache_control"):
                    marked[:] = list(seen)
            return "".join(out)

        system = text_of(req.get("system") or "")
        messages = [{"role": m["role"], "content": text_of(m["content"])} for m in req["messages"]]
        return system, messages, marked
