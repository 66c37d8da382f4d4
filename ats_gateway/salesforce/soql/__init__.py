"""A small SOQL builder: field names checked against describe metadata, values as typed literals.

    from ats_gateway.salesforce.soql import select, field as f

    q = (
        select("Id", "Name", "bpats__Job__r.Name")
        .from_("bpats__Job_Board_Application__c", describes=catalog)
        .where(f("bpats__Email__c").in_(emails) & f("bpats__Status__c").ne("Rejected"))
        .order_by("-CreatedDate")
        .limit(200)
    )
    q.render()  # "SELECT Id, Name, bpats__Job__r.Name FROM ... WHERE (...) AND (...) ..."

User text only ever reaches SOQL through :func:`literal`, which escapes it the way the SOQL
reference requires (see :mod:`.literals`). Field and object names must be identifiers
(checked always) and, when describe metadata is given, fields of the object (relationship
paths resolved through ``relationshipName`` and ``referenceTo``, child subqueries through
``childRelationships``).

One module per concept: :mod:`.literals` (escaping, typed values), :mod:`.builder`
(conditions, describe checks, queries) and :mod:`.reader`. :func:`tokenize` and
:func:`inspect` read SOQL back (strings, identifiers, literals, operators); the client uses
them to check a query's objects against a connection's allow-list, and the tests use them to
show that no value can change a query's structure.
"""

from __future__ import annotations

from ats_gateway.salesforce.soql.builder import (
    Condition,
    Describe,
    Describes,
    Field,
    Query,
    Select,
    and_,
    child_sobject,
    field,
    find_describe,
    not_,
    or_,
    resolve_path,
    select,
)
from ats_gateway.salesforce.soql.literals import (
    DateLiteral,
    SoqlError,
    UnknownField,
    escape,
    literal,
    parse_datetime,
    unescape,
)
from ats_gateway.salesforce.soql.reader import QueryShape, Token, inspect, tokenize

__all__ = [
    "Condition",
    "DateLiteral",
    "Describe",
    "Describes",
    "Field",
    "Query",
    "QueryShape",
    "Select",
    "SoqlError",
    "Token",
    "UnknownField",
    "and_",
    "child_sobject",
    "escape",
    "field",
    "find_describe",
    "inspect",
    "literal",
    "not_",
    "or_",
    "parse_datetime",
    "resolve_path",
    "select",
    "tokenize",
    "unescape",
]
