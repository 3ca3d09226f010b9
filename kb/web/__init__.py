"""Web research over httpx: search providers, a polite page fetcher, text extraction, ranking."""
