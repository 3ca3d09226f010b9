"""``kb serve``: browse the knowledge tree in a web browser, or publish it as a static site."""

from kb.serve.build import BuildResult, build_site
from kb.serve.server import DEFAULT_HOST, DEFAULT_PORT, make_server
from kb.serve.site import Response, Site

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "BuildResult", "Response", "Site", "build_site", "make_server"]
