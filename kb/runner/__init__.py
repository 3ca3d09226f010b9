"""The batch runner: a LangGraph run that turns a plan's pending PARTs into knowledge files and drops.

``stages`` holds the work (plain functions, plain data), ``graph`` only wires it,
``run`` drives one graph run (checkpoints, resume, the review interrupt), and
``lock``/``progress``/``summary`` are what the ``kb run-plan`` command shows and guards.
"""
