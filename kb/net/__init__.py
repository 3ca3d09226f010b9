"""HTTP plumbing shared by the LLM clients and the web providers: retries, rate limits, secrets."""
