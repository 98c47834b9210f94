"""Raw SQL writes invalidate django-cachalot's cache of the few tables it caches.

cachalot's own hook (``CACHALOT_INVALIDATE_RAW``) rebuilds the list of every model's table and
searches each raw write's SQL for all of them (48 µs a write, bench/scenarios/raw_write_hook.py);
only the tables of ``CACHALOT_ONLY_CACHABLE_TABLES`` can be in its cache, so this looks for those.
Installed by CoreConfig.ready, with cachalot's hook off.  Design: docs/subsystems/caching.md.
"""

from __future__ import annotations

from functools import wraps

from cachalot.api import invalidate
from cachalot.monkey_patch import SQL_DATA_CHANGE_RE
from cachalot.settings import cachalot_settings
from django.db.backends.utils import CursorWrapper

MARK = "_crossings_raw_writes"


def written_cachable_tables(sql) -> set[str]:
    """The cachable tables a raw statement may write ('' for a read or another table)."""
    if isinstance(sql, bytes):
        sql = sql.decode("utf-8", "replace")
    if not isinstance(sql, str):
        return set()
    if not SQL_DATA_CHANGE_RE.search(sql):  # case-blind: a read is not lowered, nor searched for tables
        return set()
    sql = sql.lower()
    return {table for table in cachalot_settings.CACHALOT_ONLY_CACHABLE_TABLES if table in sql}


def _wrap(original):
    @wraps(original)
    def execute(cursor, sql, *args, **kwargs):
        try:
            return original(cursor, sql, *args, **kwargs)
        finally:
            connection = cursor.db
            if getattr(connection, "raw", True):  # cachalot sets it False around ORM queries
                tables = written_cachable_tables(sql)
                if tables:
                    invalidate(*tables, db_alias=connection.alias, cache_alias=cachalot_settings.CACHALOT_CACHE)

    setattr(execute, MARK, True)
    return execute


def install() -> None:
    """Wrap Django's cursor once (idempotent); refused without a whitelist to look for."""
    if cachalot_settings.CACHALOT_INVALIDATE_RAW:
        return  # cachalot's own hook does it
    if not cachalot_settings.CACHALOT_ONLY_CACHABLE_TABLES:
        raise RuntimeError("CACHALOT_INVALIDATE_RAW is off but CACHALOT_ONLY_CACHABLE_TABLES is empty: "
                           "raw writes would never invalidate cachalot's cache")
    if getattr(CursorWrapper.execute, MARK, False):
        return
    CursorWrapper.execute = _wrap(CursorWrapper.execute)  # type: ignore[method-assign]
    CursorWrapper.executemany = _wrap(CursorWrapper.executemany)  # type: ignore[method-assign]
