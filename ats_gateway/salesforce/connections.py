"""Connection settings (one integration user each) and their local allow-lists.

The gateway speaks to the org as more than one integration user, each with permission sets
that allow exactly its job (ARCHITECTURE.md, "Connections and permission sets"). The client
also refuses, before any call is made, whatever the connection's :class:`Grants` do not list,
so a bug cannot become a data leak. Grants are data: the defaults below mirror the permission
sets, and :meth:`Grants.from_permission_sets` builds them from the ``schemas/permission_sets``
TOML documents loaded by the caller (this package imports nothing else of the gateway).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ats_gateway.salesforce.errors import OperationNotAllowed

READ, CREATE, EDIT, DELETE = "read", "create", "edit", "delete"
OPERATIONS = (READ, CREATE, EDIT, DELETE)

FLOWS = ("password", "client_credentials", "jwt", "refresh_token")
_FLOW_ALIASES = {"jwt_bearer": "jwt", "username_password": "password"}

PRODUCTION_LOGIN_URL = "https://login.salesforce.com"
SANDBOX_LOGIN_URL = "https://test.salesforce.com"


class Secret:
    """A credential that never shows itself in repr, str, logs or tracebacks."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("secrets are not pickled")


def secret(value: str | Secret | None) -> Secret | None:
    """Wrap a plain string (None and Secret pass through)."""
    if value is None or isinstance(value, Secret):
        return value
    return Secret(value)


@dataclass(frozen=True)
class Grants:
    """The (sObject, operation) pairs a connection may use; operations: read/create/edit/delete."""

    pairs: frozenset[tuple[str, str]] = frozenset()
    unrestricted: bool = False

    @classmethod
    def of(cls, mapping: Mapping[str, Iterable[str]]) -> Grants:
        """``{"Contact": ["read", "create"], ...}``."""
        pairs = set()
        for sobject, ops in mapping.items():
            for op in ops:
                if op not in OPERATIONS:
                    raise ValueError(f"unknown operation {op!r} for {sobject}")
                pairs.add((sobject.lower(), op))
        return cls(frozenset(pairs))

    @classmethod
    def everything(cls) -> Grants:
        """No local restriction (tools such as ``schemas pull`` under an admin user)."""
        return cls(frozenset(), unrestricted=True)

    @classmethod
    def from_permission_sets(cls, *documents: Mapping[str, Any]) -> Grants:
        """The union of permission-set documents.

        Accepts ``{"objects": {"Contact": ["read", "create"]}}`` or
        ``{"objects": {"Contact": {"read": true, "create": true}}}`` (and the same under
        ``"object_permissions"``); the operation names edit/update are treated alike.
        """
        merged: dict[str, set[str]] = {}
        for doc in documents:
            objects = doc.get("objects") or doc.get("object_permissions") or {}
            if isinstance(objects, list):  # [{"object": "Contact", "read": true, ...}]
                objects = {
                    str(o.get("object") or o.get("name")): {k: v for k, v in o.items()}
                    for o in objects
                }
            for sobject, ops in objects.items():
                if isinstance(ops, Mapping):
                    ops = [k for k, v in ops.items() if v is True]
                for op in ops:
                    op = {"update": EDIT, "edit": EDIT}.get(str(op).lower(), str(op).lower())
                    if op in OPERATIONS:
                        merged.setdefault(sobject, set()).add(op)
        return cls.of(merged)

    def allows(self, sobject: str, operation: str) -> bool:
        return self.unrestricted or (sobject.lower(), operation) in self.pairs

    def check(self, connection: str, sobject: str, operation: str) -> None:
        """Raise :class:`OperationNotAllowed` unless granted."""
        if not self.allows(sobject, operation):
            raise OperationNotAllowed(
                f"connection {connection!r} may not {operation} {sobject}",
                error_code="OPERATION_NOT_ALLOWED",
            )

    def __repr__(self) -> str:
        if self.unrestricted:
            return "Grants(unrestricted)"
        return f"Grants({sorted(self.pairs)!r})"


JOB = "bpats__Job__c"
JOB_BOARD_APPLICATION = "bpats__Job_Board_Application__c"
INTERVIEW = "bpats__Interview__c"
INTERVIEW_TEMPLATE = "bpats__Interview_Template__c"
INTERVIEW_TEMPLATE_DETAIL = "bpats__Interview_Template_Detail__c"
INTERVIEW_TOPIC = "bpats__Interview_Topic__c"
INTERVIEW_FEEDBACK = "bpats__Interview_Feedback__c"
INTERVIEW_TOPIC_FEEDBACK = "bpats__Interview_Topic_Feedback__c"

# Asymbl ATS Job Portal + ATS Gateway Candidate Intake; External Interview Feedback.
DEFAULT_GRANTS: dict[str, Grants] = {
    "job_portal": Grants.of(
        {
            JOB: [READ],
            # edit: delivery upserts both by their External ID ATS_Gateway_Id__c
            JOB_BOARD_APPLICATION: [READ, CREATE, EDIT],
            "Contact": [READ, CREATE, EDIT],
            # read: a redelivery looks for a resume an earlier attempt may have uploaded
            "ContentVersion": [READ, CREATE],
        }
    ),
    "interview_feedback": Grants.of(
        {
            INTERVIEW: [READ],
            INTERVIEW_TEMPLATE: [READ],
            INTERVIEW_TEMPLATE_DETAIL: [READ],
            INTERVIEW_TOPIC: [READ],
            "Contact": [READ],
            INTERVIEW_FEEDBACK: [READ, CREATE, EDIT],
            INTERVIEW_TOPIC_FEEDBACK: [READ, CREATE, EDIT],
        }
    ),
}


@dataclass(frozen=True)
class ConnectionSettings:
    """Everything one :class:`~ats_gateway.salesforce.client.SalesforceClient` needs.

    ``flow`` is one of ``password`` (username, password + security token, client id/secret),
    ``client_credentials`` (client id/secret; login_url must be the My Domain host), ``jwt``
    (client id, username, RS256 private key as PEM text or a file path) or ``refresh_token``.
    ``grants`` defaults to :data:`DEFAULT_GRANTS` for the connection's name and to nothing at
    all for other names.
    """

    name: str
    login_url: str = PRODUCTION_LOGIN_URL
    flow: str = "password"
    client_id: str = ""
    client_secret: Secret | None = None
    username: str = ""
    password: Secret | None = None
    security_token: Secret | None = None
    private_key: Secret | None = None  # PEM text
    private_key_file: str | None = None
    refresh_token: Secret | None = None
    audience: str | None = None  # JWT aud; defaults to login_url
    api_version: str = "62.0"
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    pool_size: int = 10
    grants: Grants | None = None
    key_prefix: str = "ats-gateway:sf:"
    token_ttl: int = 3600  # seconds a cached token is reused before logging in afresh
    lock_timeout: float = 30.0  # longest a re-authentication may hold the Redis lock
    budget_reserve: float = 0.10  # share of the daily API limit kept for the org's own users
    verify_tls: bool | str = True  # or a CA bundle path (e.g. the sandbox's self-signed cert)

    def __post_init__(self) -> None:
        object.__setattr__(self, "flow", _FLOW_ALIASES.get(self.flow, self.flow))
        if self.flow not in FLOWS:
            raise ValueError(f"unknown auth flow {self.flow!r}; expected one of {FLOWS}")
        for name in ("client_secret", "password", "security_token", "private_key"):
            value = getattr(self, name)
            if isinstance(value, str):
                object.__setattr__(self, name, Secret(value))
        if isinstance(self.refresh_token, str):
            object.__setattr__(self, "refresh_token", Secret(self.refresh_token))
        if not self.api_version.replace(".", "").isdigit():
            raise ValueError(f"api_version must look like 62.0, not {self.api_version!r}")
        if not 0 <= self.budget_reserve < 1:
            raise ValueError("budget_reserve is a fraction in [0, 1)")

    @classmethod
    def from_config(cls, config: Any, **overrides: Any) -> ConnectionSettings:
        """Build from any object with the gateway config's connection attributes (name,
        login_url, auth_flow, client_id, client_secret, username, password, security_token,
        private_key - PEM text or a file path -, refresh_token, api_version, verify_tls);
        ``overrides`` supply the rest (timeouts, grants, key_prefix, budget_reserve, ...)."""

        def get(name: str, default: Any = None) -> Any:
            value = getattr(config, name, default)
            return default if value == "" else value

        key = get("private_key")
        pem, path = (key, None) if key is None or "-----BEGIN" in key else (None, key)
        values: dict[str, Any] = {
            "name": config.name,
            "login_url": get("login_url", PRODUCTION_LOGIN_URL),
            "flow": get("auth_flow", None) or get("flow", "password"),
            "client_id": get("client_id", ""),
            "client_secret": get("client_secret"),
            "username": get("username", ""),
            "password": get("password"),
            "security_token": get("security_token"),
            "private_key": pem,
            "private_key_file": get("private_key_file", path),
            "refresh_token": get("refresh_token"),
            "api_version": get("api_version", "62.0"),
            "verify_tls": get("verify_tls", True),
        }
        values.update(overrides)
        return cls(**values)

    @property
    def effective_grants(self) -> Grants:
        if self.grants is not None:
            return self.grants
        return DEFAULT_GRANTS.get(self.name, Grants())

    @property
    def timeout(self) -> tuple[float, float]:
        """(connect, read) for requests."""
        return (self.connect_timeout, self.read_timeout)
