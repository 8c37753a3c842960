"""Agent logs: append-only events from agent sessions, searchable by keyword at once and by meaning soon after."""
