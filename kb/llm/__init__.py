"""LLM clients over httpx (no vendor SDKs): OpenAI-compatible chat completions and the Anthropic Messages API."""
