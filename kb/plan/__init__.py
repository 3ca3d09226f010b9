"""Expansion plans: the model, the parser that takes messy real plans, and minimal edits."""

from kb.plan.model import Batch, Part, Plan, Problem, Read, Section
from kb.plan.parser import load_plan, parse_plan

__all__ = ["Batch", "Part", "Plan", "Problem", "Read", "Section", "load_plan", "parse_plan"]
