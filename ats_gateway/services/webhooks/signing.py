"""Standard Webhooks signatures (https://www.standardwebhooks.com, spec v1.0.0), through the
``standardwebhooks`` library.

A symmetric secret is 32 random bytes shown as ``whsec_<base64>``. The signed content is
``{webhook-id}.{webhook-timestamp}.{body}``; the library's ``Webhook.sign`` takes the
timestamp as a datetime and *replaces* its tzinfo with UTC, so it must be given a UTC time
(a ``+02:00`` datetime would sign the wrong second).
"""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def headers(secret: str, message_id: str, body: str, timestamp: float) -> dict[str, str]:
    """The three ``webhook-*`` headers of one attempt (the timestamp changes per attempt,
    the id never does)."""
    when = datetime.fromtimestamp(int(timestamp), UTC)
    signature = Webhook(secret).sign(message_id, when, body)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(timestamp)),
        "webhook-signature": signature,
    }
