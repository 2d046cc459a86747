"""Adapters: settings, the event store behind BACKOFFICE_DATABASE_URL, wiring."""
