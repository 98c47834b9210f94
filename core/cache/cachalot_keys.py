"""django-cachalot table keys that ignore the database alias.

Cachalot invalidates a table's cached queries by bumping a per-table key.  By default that
key includes the alias, so a write through ``default`` would not invalidate queries cached
through ``replica1``.  Primary and replicas hold the same tables: one key per table.
"""

from hashlib import sha1

from cachalot.utils import UncachableQuery
from cachalot.utils import get_query_cache_key as cachalot_key
from django.conf import settings


def get_table_cache_key(db_alias: str, table: str) -> str:
    return sha1(f"cachalot-table:{table}".encode(), usedforsecurity=False).hexdigest()


def get_query_cache_key(compiler) -> str:
    """cachalot's query key, for queries on cachable tables only.

    cachalot builds the key (compiling the SQL once more) before it checks the tables, so
    every ORM read on the hot, uncached tables paid a second SQL compilation.  The tables
    of the query's FROM clause are known without compiling: when one of them is not
    cachable, the query is not either.
    """
    tables = {alias.table_name for alias in compiler.query.alias_map.values()}
    if tables and not tables <= settings.CACHALOT_ONLY_CACHABLE_TABLES:
        raise UncachableQuery
    return cachalot_key(compiler)
