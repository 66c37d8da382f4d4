"""The Salesforce REST client: the only code of the gateway that speaks to Salesforce.

Imports nothing else of the gateway (and never Flask); everything it needs is passed in:
a :class:`ConnectionSettings`, a ``redis.Redis`` and, optionally, describe metadata::

    settings = ConnectionSettings.from_config(config.connections["job_portal"],
                                              connect_timeout=5, read_timeout=30)
    client = SalesforceClient(settings, redis_client, describes=describe_catalog)
    jobs = client.query(select("Id", "Name").from_("bpats__Job__c").where(...))
    outcomes = client.bulk_create("Contact", records)      # 1 API call per 1,000 records
    client.status()       # /readyz: {"connection", "authenticated", "api_usage": {...}}
    client.may_spend(3)   # the API budget governor (reserve kept for the org's users)

Errors are :class:`SalesforceError` subclasses (see ``errors.py``); batch calls return one
:class:`RecordOutcome` per input record, in input order.
"""

from ats_gateway.salesforce.auth import Token, TokenManager
from ats_gateway.salesforce.budget import ApiBudget, BudgetSnapshot
from ats_gateway.salesforce.client import SalesforceClient
from ats_gateway.salesforce.connections import (
    DEFAULT_GRANTS,
    ConnectionSettings,
    Grants,
    Secret,
)
from ats_gateway.salesforce.errors import (
    AuthenticationFailed,
    ErrorDetail,
    MalformedQuery,
    NotFound,
    OperationNotAllowed,
    PermissionDenied,
    RecordInvalid,
    RecordLocked,
    RequestLimitExceeded,
    RolledBack,
    SalesforceError,
    SessionExpired,
    Unavailable,
)
from ats_gateway.salesforce.results import (
    Graph,
    GraphResult,
    QueryPage,
    QueryResult,
    RecordOutcome,
    Subrequest,
    SubResponse,
    UpsertResult,
)

__all__ = [
    "DEFAULT_GRANTS",
    "ApiBudget",
    "AuthenticationFailed",
    "BudgetSnapshot",
    "ConnectionSettings",
    "ErrorDetail",
    "Grants",
    "Graph",
    "GraphResult",
    "MalformedQuery",
    "NotFound",
    "OperationNotAllowed",
    "PermissionDenied",
    "QueryPage",
    "QueryResult",
    "RecordInvalid",
    "RecordLocked",
    "RecordOutcome",
    "RequestLimitExceeded",
    "RolledBack",
    "SalesforceClient",
    "SalesforceError",
    "Secret",
    "SessionExpired",
    "SubResponse",
    "Subrequest",
    "Token",
    "TokenManager",
    "Unavailable",
    "UpsertResult",
]
