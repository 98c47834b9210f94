"""Metrics, request context, Celery signals and health checks."""
