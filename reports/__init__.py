"""Render a run directory's results.json into report.html (self-contained) and report.md."""

from reports.render import render_report

__all__ = ["render_report"]
