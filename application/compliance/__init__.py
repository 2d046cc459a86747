"""Compliance: regulatory reports, AML alerts and risk views (docs/reports.md)."""
