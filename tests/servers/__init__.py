"""Real HTTP servers on 127.0.0.1 for the LLM and web tests (threads, ephemeral ports, server-side counts)."""

from .base import FaultPlan, LoopbackServer
from .llm import LLMServer
from .pages import PageServer
from .search import SearchServer

__all__ = ["FaultPlan", "LLMServer", "LoopbackServer", "PageServer", "SearchServer"]
