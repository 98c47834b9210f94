"""The project's PostgreSQL engine (``ENGINE = "core.db.backend"``): see ``base``."""
