"""Precision and recall of kb's support check on the labelled (sentence, passage) pairs, each way in one run.

    .venv/bin/python bench/bench_support.py [--show-wrong] [--judge-url URL --judge-model NAME]

- **lexical**: kb.llm.support.judge (numbers and API names must be in the passage, and half of the sentence's
  content words);
- **lexical + embedding**: the lexical verdict, and the sentence's WordLlama vector (kb.corpus.embed, the loader
  the offline filler uses) near enough to one of the passage's sentences (or two in a row); the threshold is
  the best one on this very set, so its numbers are optimistic;
- **lexical + judge**: the lexical verdict, then the model's (kb.llm.support_judge, the prompt the writer
  uses), one pair a call, when ``--judge-url`` names an OpenAI-compatible endpoint (vLLM, Ollama ...).

Pairs: tests/support_labels.json (QUALITY.md labels; P counts as unsupported). Precision: of the sentences a
check passes, the share labelled S; recall: of the S sentences, the share it passes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LABELS = ROOT / "tests" / "support_labels.json"
sys.path.insert(0, str(ROOT))

from kb.corpus.embed import load_embedder  # noqa: E402
from kb.llm.support import CITE, _CODE_SPAN, Review, Verdict, judge  # noqa: E402
from kb.llm.support_judge import apply_judgement, judge_prompt, parse_judgement  # noqa: E402


def load_pairs() -> list[tuple[str, str, str, str]]:
    """(sentence, passage text, label, kind) for every labelled pair."""
    data = json.loads(LABELS.read_text(encoding="utf-8"))
    return [(p["sentence"], data["passages"][p["passage"]], p["label"], p["kind"]) for p in data["pairs"]]


def score(passed: list[bool], pairs) -> tuple[float, float, int, int, int]:
    tp = sum(1 for ok, p in zip(passed, pairs) if ok and p[2] == "S")
    fp = sum(1 for ok, p in zip(passed, pairs) if ok and p[2] != "S")
    fn = sum(1 for ok, p in zip(passed, pairs) if not ok and p[2] == "S")
    return (tp / (tp + fp) if tp + fp else 0.0), (tp / (tp + fn) if tp + fn else 0.0), tp, fp, fn


def windows(passage: str) -> list[str]:
    """A passage's sentences and each two in a row: what one sentence of prose may restate."""
    sentences = [s for s in re.split(r"(?<=[.!?;:])\s+", passage) if s.strip()]
    return sentences + [f"{a} {b}" for a, b in zip(sentences, sentences[1:])]


def embedding_scores(pairs) -> list[float]:
    embedder = load_embedder()
    if embedder is None:
        raise SystemExit("wordllama is not installed: pip install -c constraints.txt -e '.[dev]'")
    out = []
    for sentence, passage, _label, _kind in pairs:
        claim = CITE.sub(" ", _CODE_SPAN.sub(lambda m: m.group(2), sentence))
        out.append(float(max(embedder.similarity(claim, windows(passage)))))
    return out


async def judge_all(pairs, url: str, model: str) -> list[bool | None]:
    """The model's verdict on each pair (None: its reply held no verdict)."""
    from kb.llm.openai import OpenAIClient

    client = OpenAIClient(base_url=url, api_key=None, model=model, timeout_s=120)
    out: list[bool | None] = []
    for sentence, passage, _label, _kind in pairs:
        verdict = Verdict(sentence, [1], None)
        system, prompt = judge_prompt([verdict], {1: passage})
        reply = await client.complete(system, [{"role": "user", "content": prompt}], temperature=0.0, max_tokens=512)
        judgement = parse_judgement(reply.text, 1)
        result = apply_judgement(Review([verdict]), [verdict], judgement)
        out.append(None if judgement is None or 1 not in judgement else result.review.verdicts[0].supported)
    await client.aclose()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--show-wrong", action="store_true", help="list the pairs each check gets wrong")
    parser.add_argument("--judge-url", help="an OpenAI-compatible base URL (ending in /v1) to measure the judge")
    parser.add_argument("--judge-model", default="", help="the model name the endpoint serves")
    args = parser.parse_args()
    pairs = load_pairs()
    kinds = sorted({p[3] for p in pairs})
    print(f"labelled set: {len(pairs)} pairs, {sum(p[2] == 'S' for p in pairs)} S / "
          f"{sum(p[2] == 'P' for p in pairs)} P / {sum(p[2] == 'U' for p in pairs)} U; kinds: "
          + ", ".join(f"{k} {sum(p[3] == k for p in pairs)}" for k in kinds) + "\n")
    started = time.perf_counter()
    lexical = [judge(s, [p]) is None for s, p, _l, _k in pairs]
    lexical_s = time.perf_counter() - started
    started = time.perf_counter()
    cosine = embedding_scores(pairs)
    embed_s = time.perf_counter() - started

    def f1(t: float) -> float:
        precision, recall, *_ = score([ok and c >= t for ok, c in zip(lexical, cosine)], pairs)
        return 2 * precision * recall / (precision + recall) if precision + recall else 0.0

    threshold = max([x / 100 for x in range(0, 91, 5)], key=f1)  # the best F1 on this set: optimistic
    rows = [("lexical", lexical, lexical_s),
            (f"lexical + embedding (cos >= {threshold:.2f})", [ok and c >= threshold for ok, c in zip(lexical, cosine)],
             lexical_s + embed_s)]
    if args.judge_url:
        started = time.perf_counter()
        judged = asyncio.run(judge_all(pairs, args.judge_url, args.judge_model))
        unread = sum(1 for j in judged if j is None)
        rows.append((f"lexical + judge ({args.judge_model}; {unread} unread kept lexical)",
                     [ok and (j is not False) for ok, j in zip(lexical, judged)], time.perf_counter() - started))
    header = f"{'check':<52} {'precision':>9} {'recall':>7} {'tp':>4} {'fp':>4} {'fn':>4} {'s':>7}"
    print(header)
    print("-" * len(header))
    for name, passed, seconds in rows:
        precision, recall, tp, fp, fn = score(passed, pairs)
        print(f"{name:<52} {precision:>9.2f} {recall:>7.2f} {tp:>4} {fp:>4} {fn:>4} {seconds:>7.3f}")
    print("\nby kind (lexical): " + "; ".join(
        f"{k}: {sum(ok == (p[2] == 'S') for ok, p in zip(lexical, pairs) if p[3] == k)}/{sum(p[3] == k for p in pairs)} right"
        for k in kinds))
    if args.show_wrong:
        for name, passed, _s in rows:
            print(f"\n{name}: wrong on")
            for ok, (sentence, _p, label, kind) in zip(passed, pairs):
                if ok != (label == "S"):
                    print(f"  {label} {kind:<10} {'passed' if ok else 'failed'}: {sentence}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
