"""The httpx chat clients against real loopback servers: replies, usage, faults, retries, truncation, cache, limits."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from kb.cache import DiskCache
from kb.llm.anthropic import AnthropicClient
from kb.llm.complete import complete_text, strip_thinking
from kb.llm.openai import OpenAIClient
from kb.net.ratelimit import RateLimiter
from kb.net.retry import ProviderError, RetryPolicy, parse_retry_after
from kb.net.secrets import redact
from servers import FaultPlan, LLMServer

KEY = "sk-loopback-SECRET-0123456789abcdef"
FAST = RetryPolicy(max_retries=4, backoff_s=0.02, backoff_max_s=0.1, attempt_timeout_s=5.0)
HANG = RetryPolicy(max_retries=4, backoff_s=0.02, backoff_max_s=0.1, attempt_timeout_s=1.0)  # a hang costs 1 s
PROMPT = [{"role": "user", "content": 'The first line is "# Demo"\n  ## Section 1: Alpha\n  ## Section 2: Beta\n'}]
SYSTEM = "You write files."


def client(kind: str, server: LLMServer, *, key: str | None = KEY, policy: RetryPolicy = FAST, **kwargs):
    cls = OpenAIClient if kind == "openai" else AnthropicClient
    return cls(base_url=f"{server.url}/v1", api_key=key, model="loopback-1", policy=policy, timeout_s=policy.attempt_timeout_s,
               **kwargs)


def run(coro):
    return asyncio.run(coro)


@pytest.fixture
def server():
    with LLMServer(key=KEY, hang_s=5) as srv:
        yield srv


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_reply_text_usage_and_finish(server, kind):
    c = client(kind, server)
    reply = run(c.complete(SYSTEM, PROMPT, max_tokens=500))
    assert reply.text.startswith("# Demo") and "## Section 2: Beta" in reply.text
    # Anthropic counts the prompt kb marks for its cache apart from input_tokens: every prompt token is somewhere.
    assert reply.finish == "stop" and reply.tokens_in + reply.cache_write + reply.cache_read > 0 and reply.tokens_out > 0
    assert (reply.cache_write > 0) == (kind == "anthropic")
    sent = server.log[0]
    headers = {k.lower(): v for k, v in sent["headers"].items()}
    if kind == "openai":
        assert sent["path"] == "/v1/chat/completions" and headers["authorization"] == f"Bearer {KEY}"
    else:
        assert sent["path"] == "/v1/messages" and headers["x-api-key"] == KEY and headers["anthropic-version"]


@pytest.mark.parametrize("fault", ["500", "429", "hang", "garbage", "reset"])
def test_each_fault_is_retried_then_succeeds(fault):
    with LLMServer(key=KEY, faults=FaultPlan(queue=[fault, fault]), hang_s=5) as srv:
        reply = run(client("openai", srv, policy=HANG if fault == "hang" else FAST).complete(SYSTEM, PROMPT, max_tokens=500))
        assert reply.text.startswith("# Demo")
        assert reply.attempts == 3
        assert srv.counts["/v1/chat/completions"] == 3


def test_retry_after_is_honoured():
    with LLMServer(key=KEY, faults=FaultPlan(queue=["429"], retry_after="1")) as srv:
        start = time.monotonic()
        run(client("anthropic", srv).complete(SYSTEM, PROMPT, max_tokens=500))
        assert time.monotonic() - start >= 1.0
        assert srv.counts["/v1/messages"] == 2


def test_parse_retry_after_forms():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("garbage") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past


def test_gives_up_with_a_clear_reason_after_bounded_retries():
    with LLMServer(key=KEY, faults=FaultPlan(rate=1.0, kinds=("500",))) as srv:
        with pytest.raises(ProviderError) as err:
            run(client("openai", srv).complete(SYSTEM, PROMPT, max_tokens=500))
        assert "gave up after 5 attempts" in str(err.value) and "HTTP 500" in str(err.value)
        assert srv.counts["/v1/chat/completions"] == 5


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_wrong_key_fails_at_once_and_the_key_is_redacted(kind):
    with LLMServer(key="a-different-expected-key") as srv:
        with pytest.raises(ProviderError) as err:
            run(client(kind, srv).complete(SYSTEM, PROMPT, max_tokens=500))
        message = str(err.value)
        assert "HTTP 401" in message and KEY not in message and "[redacted]" in message
        assert srv.total() == 1  # not retried
        assert KEY not in repr(client(kind, srv))


def test_server_down_fails_fast_and_cleanly():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    c = OpenAIClient(base_url=f"http://127.0.0.1:{port}/v1", api_key=KEY, model="m", policy=FAST, timeout_s=1.0)
    start = time.monotonic()
    with pytest.raises(ProviderError, match="connection failed"):
        run(c.complete(SYSTEM, PROMPT, max_tokens=100))
    assert time.monotonic() - start < 5


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_a_reply_cut_off_by_the_token_limit_is_continued(kind):
    with LLMServer(key=KEY) as whole, LLMServer(key=KEY, behaviour={"truncate"}) as cut:
        full = run(complete_text(client(kind, whole), SYSTEM, PROMPT, model=None, temperature=None, max_tokens=500))
        joined = run(complete_text(client(kind, cut), SYSTEM, PROMPT, model=None, temperature=None, max_tokens=500))
        assert joined.text == full.text
        assert joined.continuations == 1 and joined.calls == 2
        body = cut.log[1]["body"].decode()
        if kind == "anthropic":
            assert '"role": "assistant"' in body or '"role":"assistant"' in body


def test_a_reply_still_cut_off_is_never_returned():
    with LLMServer(key=KEY, behaviour={"truncate"}) as cut:
        with pytest.raises(ProviderError, match="cut off by the token limit"):
            run(complete_text(client("openai", cut), SYSTEM, PROMPT, model=None, temperature=None, max_tokens=500,
                              max_continuations=0))


def test_thinking_blocks_are_stripped():
    assert strip_thinking("<think>plan\nmore</think>\n# Title\nbody") == "# Title\nbody"
    assert strip_thinking("reasoning without an opening tag</think># T") == "# T"
    assert strip_thinking("# T\nbody\n<think>never closed") == "# T\nbody"
    assert strip_thinking("# T\n<thinking>x</thinking>y") == "# T\ny"
    with LLMServer(key=KEY, behaviour={"think"}) as srv:
        reply = run(complete_text(client("openai", srv), SYSTEM, PROMPT, model=None, temperature=None, max_tokens=500))
        assert "<think>" not in reply.text and reply.text.startswith("# Demo")


def test_cache_answers_a_repeat_and_no_cache_bypasses_it(server, tmp_path):
    cache = DiskCache(tmp_path / "cache")
    first = run(client("openai", server, cache=cache).complete(SYSTEM, PROMPT, max_tokens=500))
    again = run(client("openai", server, cache=DiskCache(tmp_path / "cache")).complete(SYSTEM, PROMPT, max_tokens=500))
    assert again.cached and again.text == first.text
    assert server.total() == 1
    bypass = DiskCache(tmp_path / "cache", read=False)
    fresh = run(client("openai", server, cache=bypass).complete(SYSTEM, PROMPT, max_tokens=500))
    assert not fresh.cached and server.total() == 2
    # Nothing secret on disk: keys are not part of the cache key or the stored request.
    for f in (tmp_path / "cache").rglob("*.json"):
        assert KEY not in f.read_text()


def test_rate_limiter_spaces_requests_and_budgets_tokens():
    now = [0.0]
    limiter = RateLimiter(requests_per_minute=60, tokens_per_minute=600, clock=lambda: now[0])
    assert limiter.reserve(10) == 0.0
    assert limiter.reserve(10) == pytest.approx(1.0)  # one request a second
    assert limiter.reserve(10) == pytest.approx(2.0)
    tokens = RateLimiter(tokens_per_minute=600, clock=lambda: now[0])  # 10 tokens/s, bucket of 600
    assert tokens.reserve(600) == 0.0
    assert tokens.reserve(100) == pytest.approx(10.0)
    tokens.settle(estimated=100, actual=0)  # the reply used nothing: refund
    assert tokens.reserve(50) == pytest.approx(5.0)


def test_one_limiter_is_shared_by_concurrent_runners(server):
    limiter = RateLimiter(requests_per_minute=600)  # one request per 0.1 s for everyone together
    clients = [client("openai", server, limiter=limiter) for _ in range(4)]

    async def burst():
        prompts = [[{"role": "user", "content": PROMPT[0]["content"] + str(i)}] for i in range(8)]
        await asyncio.gather(*(clients[i % 4].complete(SYSTEM, p, max_tokens=100) for i, p in enumerate(prompts)))

    start = time.monotonic()
    run(burst())
    assert time.monotonic() - start >= 0.7  # 8 requests, 0.1 s apart
    assert server.total() == 8


def test_redact_masks_plain_and_url_encoded_forms():
    key = "sk+abc/def=ghij"
    assert redact(f"bad key {key} in https://x/?k=sk%2Babc%2Fdef%3Dghij", [key]) == "bad key [redacted] in https://x/?k=[redacted]"
