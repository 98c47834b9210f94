"""PostgreSQL: the primary/replica router and replica health."""
