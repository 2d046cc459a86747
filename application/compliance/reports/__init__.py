"""The reports as pure functions of facts read as of a position (docs/reports.md)."""
