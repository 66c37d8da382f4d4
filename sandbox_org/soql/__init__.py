"""The sandbox org's SOQL engine: parse a query with lark, check it against describes, run it.

Public names:

* ``execute(soql, source, *, include_deleted=False, api_version="62.0", now=None)`` ->
  ``QueryResult`` (``records`` in Salesforce's JSON shape, ``total_size``, ``is_count``).
* ``parse(soql)`` -> the syntax tree (``nodes.Query``).
* ``SoqlError``: ``error_code`` (MALFORMED_QUERY, INVALID_FIELD, INVALID_TYPE,
  INVALID_QUERY_FILTER_OPERATOR, NUMBER_OUTSIDE_VALID_RANGE) and ``message`` worded as a real
  org words them (caret messages with ``ERROR at Row:r:Column:c``).
* ``RecordSource``: the protocol the store implements (describes and rows).
* ``escape(value)``: a value as the body of a SOQL string literal.

Supported: field lists, parent paths of any depth (polymorphic lookups by key prefix), child
subqueries (nested too), ``COUNT()``, ``FIELDS(ALL|STANDARD|CUSTOM)``, aggregates (``COUNT``,
``COUNT_DISTINCT``, ``SUM``, ``AVG``, ``MIN``, ``MAX``) with ``GROUP BY`` and aliases, ``FROM``
aliases, WHERE with AND/OR/NOT, ``= != <> < <= > >= LIKE IN NOT IN INCLUDES EXCLUDES``, semi-
and anti-joins, every literal kind including date literals, ORDER BY with NULLS FIRST/LAST,
LIMIT, OFFSET (<= 2000), ``WITH SECURITY_ENFORCED`` and ``FOR VIEW|REFERENCE|UPDATE`` (no-ops).
Not supported (MALFORMED_QUERY): HAVING, TYPEOF, ROLLUP/CUBE, date functions such as
``CALENDAR_YEAR()``, ``DISTANCE()``/``GEOLOCATION()``, ``USING SCOPE``, bind variables.
"""

from .engine import QueryResult, execute
from .errors import SoqlError
from .literals import escape
from .parser import parse
from .source import RecordSource

__all__ = ["QueryResult", "RecordSource", "SoqlError", "escape", "execute", "parse"]
