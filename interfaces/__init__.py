"""HTTP API and CLI: they call the application."""
