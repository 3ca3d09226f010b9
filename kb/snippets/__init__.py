"""Snippet validation: extract fenced code from the knowledge tree, run it sandboxed, record results.

Kept import-light on purpose: `kb.snippets.sandbox.worker` runs under the profile's interpreter
with the standard library only.
"""
