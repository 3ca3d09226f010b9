"""The Anthropic Messages API (``POST /v1/messages``)."""

from __future__ import annotations

from typing import Any

from kb.llm.base import ChatClient, Completion, as_int, require

API_VERSION = "2023-06-01"
_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_use"}


class AnthropicClient(ChatClient):
    """Messages API; the base URL is ``https://api.anthropic.com`` (with or without ``/v1``)."""

    provider = "anthropic"
    supports_prefill = True

    def endpoint(self) -> str:
        return f"{self.base_url}/messages" if self.base_url.endswith("/v1") else f"{self.base_url}/v1/messages"

    def headers(self) -> dict[str, str]:
        headers = {"anthropic-version": API_VERSION}
        if self._api_key:
            headers["x-api-key"] = self._api_key
        return headers

    def body(self, system, messages, model, temperature, max_tokens) -> dict[str, Any]:
        # Prompt caching: the system prompt and the first user turn (the section's passages and context) are the
        # prefix every rewrite and continuation of that request repeats; marked, they are billed at a tenth.
        cached = [{"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}] if system else system
        turns = list(messages)
        if turns and turns[0]["role"] == "user" and isinstance(turns[0]["content"], str):
            turns[0] = {"role": "user", "content": [{"type": "text", "text": turns[0]["content"],
                                                     "cache_control": {"type": "ephemeral"}}]}
        body: dict[str, Any] = {"model": model, "max_tokens": max_tokens, "system": cached, "messages": turns}
        if temperature is not None:
            body["temperature"] = temperature
        return body

    def parse(self, data: Any) -> Completion:
        require(isinstance(data, dict), "the reply is not a JSON object")
        require(data.get("type") != "error", f"the reply is an error object: {str(data.get('error'))[:200]}")
        blocks = data.get("content")
        require(isinstance(blocks, list), "the reply has no content blocks")
        # Thinking blocks are the model's reasoning, never part of the file.
        text = "".join(b.get("text", "") for b in blocks if isinstance(b, dict) and b.get("type") == "text")
        raw = str(data.get("stop_reason") or "end_turn")
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        return Completion(
            text=text,
            finish=_FINISH.get(raw, raw),
            tokens_in=as_int(usage.get("input_tokens")),
            tokens_out=as_int(usage.get("output_tokens")),
            cache_write=as_int(usage.get("cache_creation_input_tokens")),
            cache_read=as_int(usage.get("cache_read_input_tokens")),
            model=data.get("model") if isinstance(data.get("model"), str) else None,
        )
