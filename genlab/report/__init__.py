"""Reports: one self-contained HTML page (figures embedded) from runs in the store."""

from genlab.report.html import write_report

__all__ = ["write_report"]
