"""OpenAI-compatible chat completions: OpenAI, vLLM, Ollama, llama.cpp server, LM Studio, OpenRouter."""

from __future__ import annotations

from typing import Any

from kb.llm.base import ChatClient, Completion, as_int, require

_FINISH = {"stop": "stop", "length": "length", "eos": "stop", "end_turn": "stop"}


class OpenAIClient(ChatClient):
    """POST ``{base_url}/chat/completions`` (base URL ends in ``/v1``); Bearer key when one is set."""

    provider = "openai"

    def __init__(self, *, max_tokens_param: str = "max_tokens", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_tokens_param = max_tokens_param

    def endpoint(self) -> str:
        return f"{self.base_url}/chat/completions"

    def headers(self) -> dict[str, str]:
        # Local servers (vLLM, Ollama, llama.cpp) need no key: send none rather than a dummy.
        return {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}

    def body(self, system, messages, model, temperature, max_tokens) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": model,
            "messages": [{"role": "system", "content": system}, *messages],
            self.max_tokens_param: max_tokens,
            "stream": False,
        }
        if temperature is not None:
            body["temperature"] = temperature
        return body

    def parse(self, data: Any) -> Completion:
        require(isinstance(data, dict), "the reply is not a JSON object")
        if "error" in data and not data.get("choices"):
            require(False, f"the reply is an error object: {str(data['error'])[:200]}")
        choices = data.get("choices")
        require(isinstance(choices, list) and bool(choices), "the reply has no choices")
        choice = choices[0]
        require(isinstance(choice, dict) and isinstance(choice.get("message"), dict), "the reply's choice has no message")
        content = choice["message"].get("content")
        if isinstance(content, list):  # some servers send content parts
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        require(content is None or isinstance(content, str), "the reply's content is not text")
        raw = str(choice.get("finish_reason") or "stop")
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        prompt = as_int(usage.get("prompt_tokens"))
        # prompt_tokens counts the prefix OpenAI (or vLLM with --enable-prompt-tokens-details) served from its cache too;
        # that part is billed at the cached price, so it is counted apart.
        details = usage.get("prompt_tokens_details") if isinstance(usage.get("prompt_tokens_details"), dict) else {}
        cached = min(prompt, as_int(details.get("cached_tokens")))
        return Completion(
            text=content or "",
            finish=_FINISH.get(raw, raw),
            tokens_in=prompt - cached,
            tokens_out=as_int(usage.get("completion_tokens")),
            model=data.get("model") if isinstance(data.get("model"), str) else None,
            cache_read=cached,
        )
