"""The run report: one self-contained HTML file (figures embedded), metrics.json and CSV tables."""

from stratonet.report.build import SECTIONS, build_report

__all__ = ["SECTIONS", "build_report"]
