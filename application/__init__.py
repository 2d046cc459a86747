"""Use cases of the back office, on the ``eventsourcing`` application framework."""
