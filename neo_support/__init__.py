"""Neo Support: the Django project package."""

from neo_support.celery import app as celery_app

__all__ = ("celery_app",)
