"""django-cachalot table keys that ignore the database alias.

Cachalot invalidates a table's cached queries by bumping a per-table key.  By default that
key includes the alias, so a write through ``default`` would not invalidate queries cached
through ``replica1``.  Primary and replicas hold the same tables: one key per table.
"""

from hashlib import sha1


def get_table_cache_key(db_alias: str, table: str) -> str:
    return sha1(f"cachalot-table:{table}".encode(), usedforsecurity=False).hexdigest()
