"""Source attribution: where each application came from, recorded with it.

Inputs, strongest first:

* the channel that received it: Indeed Apply (``POST /v1/boards/indeed/applications``) says
  ``Indeed``;
* the body's ``source`` (a career site sets it, e.g. from its own referrer logic) and the
  campaign parameters ``utm_source`` / ``utm_medium`` / ``utm_campaign`` (the career site
  forwards them from its page URL; the gateway's feeds put ``utm_source=Indeed|LinkedIn`` on
  every job URL they publish);
* the API key's default source (``ats-gateway keys create --source "Job Board X"``), for job
  boards posting with a secret key.

Outputs, on the ``bpats__Job_Board_Application__c`` record:

* ``bpats__Source__c`` (the org's picklist): the source when it is one of the picklist's
  active values (matched case-insensitively, sent with the org's spelling); otherwise left
  empty, so a free-text source never becomes an inactive picklist value;
* ``ATS_Gateway_Source__c`` (text, owned by the gateway; see the README's org setup): the whole
  attribution, e.g. ``source=Indeed; utm_source=Indeed; utm_medium=job_board; via=indeed-apply``
  cut to the field's length. Set only when the org's describe has the field.

And on the application's status record (Redis; no candidate data): ``source`` (the short
label) and ``job_id``, which ``ats-gateway report sources`` counts.

Board names with a signed channel are reserved for it ([21]): any key, a publishable one
included, could send ``source: "Indeed"`` and make its record look like a signed Indeed Apply.
So when the source (or, without one, ``utm_source``) names a board of :data:`SIGNED_CHANNELS`
and the application did not come through that board's channel, the picklist is not set to
the board, the attribution text says ``via=unsigned``, and the report's label is
``Indeed (unsigned)``: a career-site visit from Indeed's job listing (``utm_source=Indeed``,
which the feeds put on every job URL) still counts, apart from Indeed Apply. Values are
written into the text with ``;`` and ``=`` replaced (``,`` and ``:``), so a ``utm_campaign``
of ``x; via=indeed-apply`` cannot forge a field of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

SOURCE_FIELD = "bpats__Source__c"
GATEWAY_FIELD = "ATS_Gateway_Source__c"
UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign")
MAX_UTM = 255
UNKNOWN = "(none)"
#: board name (lower case) -> the only channel (``via``) that may claim it
SIGNED_CHANNELS = {"indeed": "indeed-apply"}
UNSIGNED = "unsigned"

FieldErrors = list[dict[str, str]]


@dataclass(frozen=True)
class Attribution:
    source: str = ""
    utm_source: str = ""
    utm_medium: str = ""
    utm_campaign: str = ""
    via: str = ""  # the channel: indeed-apply, key:<id>, ...

    @property
    def claimed(self) -> str:
        """The board this attribution names (source, else utm_source)."""
        return self.source or self.utm_source

    @property
    def unsigned_claim(self) -> bool:
        """Names a board with a signed channel without having come through it."""
        channel = SIGNED_CHANNELS.get(self.claimed.lower())
        return channel is not None and self.via != channel

    @property
    def label(self) -> str:
        """The short name counted by the report: the source, else utm_source."""
        if self.unsigned_claim:
            return f"{self.claimed} ({UNSIGNED})"
        return self.claimed or UNKNOWN

    def text(self) -> str:
        via = self.via or (UNSIGNED if self.unsigned_claim else "")
        parts = [
            f"{name}={value.replace(';', ',').replace('=', ':')}"
            for name, value in (
                ("source", self.source),
                ("utm_source", self.utm_source),
                ("utm_medium", self.utm_medium),
                ("utm_campaign", self.utm_campaign),
                ("via", via),
            )
            if value
        ]
        return "; ".join(parts)


def extract(
    data: Mapping[str, Any], *, default_source: str = "", via: str = ""
) -> tuple[dict[str, Any], Attribution, FieldErrors]:
    """Take the campaign parameters out of an application body (they are not fields of the
    org's record) and work out its attribution; errors name the public field."""
    body = dict(data)
    errors: FieldErrors = []
    utm: dict[str, str] = {}
    for name in UTM_FIELDS:
        if name not in body:
            continue
        value = body.pop(name)
        if value is None or value == "":
            continue
        if not isinstance(value, str) or len(value) > MAX_UTM or not value.isprintable():
            errors.append(
                {
                    "field": name,
                    "code": "invalid",
                    "message": f"Must be text of at most {MAX_UTM} printable characters.",
                }
            )
            continue
        utm[name] = value.strip()
    given = body.get("source")
    source = given.strip() if isinstance(given, str) and given.strip() else ""
    if not source and default_source:
        source = default_source
        body["source"] = default_source
    return body, Attribution(source=source, via=via, **utm), errors


@dataclass
class SourceRecorder:
    """Writes an :class:`Attribution` into a validated record (API names), following the
    org's describe: ``describe()`` returns the application object's ``ObjectDescribe``."""

    describe: Callable[[], Any]

    def apply(self, record: dict[str, Any], attribution: Attribution) -> None:
        described = self.describe()
        picklist = described.field(SOURCE_FIELD)
        if picklist is not None:
            allowed = {v.lower(): v for v in picklist.active_values}
            chosen = allowed.get(attribution.source.lower()) if attribution.source else None
            if chosen is None and not attribution.source and attribution.utm_source:
                chosen = allowed.get(attribution.utm_source.lower())
            if attribution.unsigned_claim:
                chosen = None  # the board's picklist value means its signed channel
            if chosen is not None:
                record[SOURCE_FIELD] = chosen
            else:
                record.pop(SOURCE_FIELD, None)
        text = attribution.text()
        gateway = described.field(GATEWAY_FIELD)
        if gateway is not None and text:
            record[GATEWAY_FIELD] = text[: gateway.length or 255]

    @staticmethod
    def status_fields(record: Mapping[str, Any], attribution: Attribution) -> dict[str, str]:
        """What the status record keeps for the report (no candidate data)."""
        return {
            "source": attribution.label,
            "job_id": str(record.get("bpats__Job__c") or ""),
        }
