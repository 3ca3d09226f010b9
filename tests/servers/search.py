"""A SearXNG-shaped JSON endpoint (``/search?q=...&format=json``) over the page server's pages."""

from __future__ import annotations

import re
from urllib.parse import parse_qs

from .base import LoopbackServer, json_reply


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if len(w) > 2}


class SearchServer(LoopbackServer):
    """Ranks the given pages by word overlap of the query with their title and text."""

    def __init__(self, pages: dict[str, tuple[str, str]], base_url: str, *, results: int = 5, extra=None, lead=None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.pages = pages
        self.base_url = base_url
        self.results = results
        self.extra = extra or []  # results always appended (e.g. broken links)
        self.lead = lead if lead is not None else []  # results always put first (e.g. an internal service's URL)

    def handle(self, method, path, query, headers, body):
        if path != "/search":
            return 404, {"Content-Type": "text/plain"}, b"not found"
        params = parse_qs(query)
        if params.get("format") != ["json"]:
            return 403, {"Content-Type": "text/html"}, b"<html>format not allowed</html>"
        q = _words(" ".join(params.get("q", [""])))
        scored = []
        for path_, (title, html) in self.pages.items():
            score = len(q & _words(title + " " + html))
            if score:
                scored.append((score, path_, title, html))
        scored.sort(key=lambda t: (-t[0], t[1]))
        results = list(self.lead) + [
            {"title": title, "url": self.base_url + path_, "content": re.sub(r"<[^>]+>", "", html)[:160].strip(), "engine": "loopback"}
            for _s, path_, title, html in scored[: self.results]
        ] + list(self.extra)
        return json_reply({"query": " ".join(params.get("q", [""])), "number_of_results": len(results), "results": results})
