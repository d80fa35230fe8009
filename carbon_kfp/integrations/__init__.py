"""Framework integrations; each module imports its framework, so import them explicitly."""
