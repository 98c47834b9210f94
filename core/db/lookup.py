"""Hot ORM queries with their SQL compiled once: one row by primary key (``RowById``), or any
queryset whose only parameters are placeholders (``compile_query`` / ``fetch_rows``).

The ORM compiles every queryset on every call: for a wide model that is most of a single
primary-key lookup's CPU (``as_sql`` and ``pre_sql_setup`` were 33 % of ``GET me/`` in the
profile of docs/benchmarks/performance.md).  ``RowById`` lets the ORM compile
``Model.objects.filter(pk=...)[:1]`` once per database alias, keeps its SQL and the field
converters the compiler chose, and then runs that SQL with the new key: the same SELECT,
the same values, the same routing (``router.db_for_read``) as the queryset would give.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.db import connections, router

_UUID_PLACEHOLDER = uuid.UUID(int=0x5EED)
_INT_PLACEHOLDER = 987_654_321_123


def _placeholder(model):
    return _UUID_PLACEHOLDER if model._meta.pk.get_internal_type() == "UUIDField" else _INT_PLACEHOLDER


@dataclass(frozen=True)
class Compiled:
    sql: str
    attnames: list[str]
    converters: list[tuple[int, list, object]]


def compile_query(queryset, alias: str, placeholders: list) -> Compiled:
    """The SQL the ORM compiles for ``queryset`` on ``alias``, its columns' attribute names and the
    converters the compiler chose; refused (ValueError) unless its parameters are exactly
    ``placeholders`` (values the caller substitutes on each run, in order)."""
    compiler = queryset.query.get_compiler(using=alias)
    sql, params = compiler.as_sql()
    if list(params) != placeholders:  # the ORM bound something else: not for this shortcut
        raise ValueError(f"{queryset.model.__name__}: the query has parameters {params!r}")
    columns = [col for col, _sql, _alias in compiler.select]
    # A column by its field's attribute name, an annotation (an aggregate) by its alias.
    attnames = [col.target.attname if hasattr(col, "target") else alias for col, _sql, alias in compiler.select]
    converters = [(i, convs, expr) for i, (convs, expr) in compiler.get_converters(columns).items()]
    return Compiled(sql, attnames, converters)


def fetch_rows(compiled: Compiled, alias: str, params: list, sql: str | None = None) -> list:
    """Run ``compiled`` (or ``sql`` built from it) with ``params``; its rows, converted as the ORM would."""
    connection = connections[alias]
    with connection.cursor() as cursor:
        cursor.execute(sql or compiled.sql, params)
        rows: list = cursor.fetchall()
    if compiled.converters:
        rows = [list(row) for row in rows]
        for row in rows:
            for i, convs, expr in compiled.converters:
                for convert in convs:
                    row[i] = convert(row[i], expr, connection)
    return rows


class RowById:
    """``RowById(Model).get(pk)`` is ``Model.objects.filter(pk=pk).first()`` (without ordering),
    compiled once per alias, for a UUID or integer primary key."""

    def __init__(self, model):
        self.model = model
        self._compiled: dict[str, Compiled] = {}

    def _compile(self, alias: str) -> Compiled:
        placeholder = _placeholder(self.model)
        return compile_query(self.model._base_manager.using(alias).filter(pk=placeholder)[:1], alias, [placeholder])

    def get(self, pk, using: str | None = None):
        alias = using or router.db_for_read(self.model) or "default"
        compiled = self._compiled.get(alias)
        if compiled is None:
            compiled = self._compiled[alias] = self._compile(alias)
        key = self.model._meta.pk.get_db_prep_value(pk, connections[alias])  # as the queryset's filter would
        rows = fetch_rows(compiled, alias, [key])
        return self.model.from_db(alias, compiled.attnames, rows[0]) if rows else None
