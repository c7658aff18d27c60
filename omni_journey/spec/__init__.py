"""The journey and segment language: models, loader, checks, JSON Schema."""
