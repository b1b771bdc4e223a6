"""Celery tasks and the compute engines behind them (generation, moderation)."""
