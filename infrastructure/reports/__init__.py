"""Regulatory report files written from the reports' JSON: FinCEN's CTR XML batch."""
