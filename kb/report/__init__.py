"""`kb report`: what the workspace's knowledge base holds, and how good it is, from the records on disk."""

from kb.report.collect import collect_report
from kb.report.model import FileReport, PlanProgress, Report

__all__ = ["FileReport", "PlanProgress", "Report", "collect_report"]
