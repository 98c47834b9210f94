"""One row by primary key with its SQL compiled once: the hottest ORM lookups without the
ORM's per-call compilation.

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
class _Compiled:
    sql: str
    attnames: list[str]
    converters: list[tuple[int, list, object]]


class RowById:
    """``RowById(Model).get(pk)`` is ``Model.objects.filter(pk=pk).first()`` (without ordering),
    compiled once per alias, for a UUID or integer primary key."""

    def __init__(self, model):
        self.model = model
        self._compiled: dict[str, _Compiled] = {}

    def _compile(self, alias: str) -> _Compiled:
        placeholder = _placeholder(self.model)
        query = self.model._base_manager.using(alias).filter(pk=placeholder)[:1].query
        compiler = query.get_compiler(using=alias)
        sql, params = compiler.as_sql()
        if list(params) != [placeholder]:  # a model whose query carries more parameters: not for this
            raise ValueError(f"{self.model.__name__}: primary-key lookup has parameters {params!r}")
        columns = [col for col, _sql, _alias in compiler.select]
        attnames = [col.target.attname for col in columns]
        converters = [(i, convs, expr) for i, (convs, expr) in compiler.get_converters(columns).items()]
        return _Compiled(sql, attnames, converters)

    def get(self, pk, using: str | None = None):
        alias = using or router.db_for_read(self.model) or "default"
        compiled = self._compiled.get(alias)
        if compiled is None:
            compiled = self._compiled[alias] = self._compile(alias)
        connection = connections[alias]
        key = self.model._meta.pk.get_db_prep_value(pk, connection)  # as the queryset's filter would
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, [key])
            row = cursor.fetchone()
        if row is None:
            return None
        if compiled.converters:
            values = list(row)
            for i, convs, expr in compiled.converters:
                for convert in convs:
                    values[i] = convert(values[i], expr, connection)
            row = values
        return self.model.from_db(alias, compiled.attnames, row)
