"""Screening of visitor input and bot output (docs/moderation.md)."""
