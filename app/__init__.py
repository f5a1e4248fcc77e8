"""Lucca → Elevo sync service."""
