"""The projections' views in SQL tables beside the event log, and their runners."""
