"""``POST /services/Soap/u/<version>/``: the partner SOAP API's ``login()`` call, only that.

Salesforce's own Pub/Sub API samples and the PyPI clients built from them log in this way and
send the returned ``sessionId`` as the ``accesstoken`` of their gRPC calls. The answer is a
``LoginResult`` with the partner WSDL's element order (metadataServerUrl, passwordExpired,
sandbox, serverUrl, sessionId, userId, userInfo; userInfo starting accessibilityMode ...
organizationId), because some clients read it by position. A bad login is the SOAP fault
``sf:INVALID_LOGIN`` with HTTP 500; any other SOAP call is the fault ``sf:INVALID_OPERATION``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape

from flask import Blueprint, Response, current_app, request

from sandbox_org.auth import OAuthError
from sandbox_org.ids import ORG_ID

soap = Blueprint("sandbox_soap", __name__)

_PARTNER = "urn:partner.soap.sforce.com"
_ENVELOPE = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
    'xmlns="urn:partner.soap.sforce.com" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
    "<soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>"
)


def _fault(code: str, message: str) -> Response:
    body = (
        '<soapenv:Fault xmlns:sf="urn:fault.partner.soap.sforce.com">'
        f"<faultcode>sf:{code}</faultcode><faultstring>{code}: {escape(message)}</faultstring>"
        f'<detail><sf:LoginFault xsi:type="sf:LoginFault"><sf:exceptionCode>{code}'
        f"</sf:exceptionCode><sf:exceptionMessage>{escape(message)}</sf:exceptionMessage>"
        "</sf:LoginFault></detail></soapenv:Fault>"
    )
    return Response(_ENVELOPE.format(body=body), status=500, content_type="text/xml; charset=utf-8")


@soap.post("/services/Soap/u/<version>/")
@soap.post("/services/Soap/u/<version>")
def login(version: str) -> Response:
    sb = current_app.extensions["sandbox"]
    try:
        # The body is capped by MAX_CONTENT_LENGTH; expat (>= 2.4.1) limits entity expansion
        # and never fetches external entities.
        root = ET.fromstring(request.get_data())  # noqa: S314
    except ET.ParseError:
        return _fault("INVALID_OPERATION", "The request is not a SOAP envelope.")
    call = root.find(f".//{{{_PARTNER}}}login")
    if call is None:
        return _fault("INVALID_OPERATION", "Only login() is offered by the sandbox org.")
    username = call.findtext(f"{{{_PARTNER}}}username") or ""
    password = call.findtext(f"{{{_PARTNER}}}password") or ""
    try:
        session = sb.sessions.login(username, password)
    except OAuthError as err:
        return _fault(err.error, err.description)
    user = session.user
    base = (sb.config.instance_url or request.host_url).rstrip("/")
    org15 = ORG_ID[:15]
    full_name = " ".join(p for p in (user.first_name, user.last_name) if p)
    info = "".join(
        f"<{k}>{escape(str(v))}</{k}>"
        for k, v in (
            ("accessibilityMode", "false"),
            ("chatterExternal", "false"),
            ("currencySymbol", "$"),
            ("orgAttachmentFileSizeLimit", 5242880),
            ("orgDefaultCurrencyIsoCode", "USD"),
            ("orgDefaultCurrencyLocale", "en_US"),
            ("orgDisallowHtmlAttachments", "false"),
            ("orgHasPersonAccounts", "false"),
            ("organizationId", ORG_ID),
            ("organizationMultiCurrency", "false"),
            ("organizationName", "ATS Gateway Sandbox"),
            ("sessionSecondsValid", int(sb.sessions.ttl)),
            ("userEmail", user.email),
            ("userFullName", full_name),
            ("userId", user.user_id),
            ("userLanguage", "en_US"),
            ("userLocale", "en_US"),
            ("userName", user.username),
            ("userTimeZone", "America/Los_Angeles"),
            ("userType", "Standard"),
            ("userUiSkin", "Theme3"),
        )
    )
    result = (
        f"<metadataServerUrl>{base}/services/Soap/m/{escape(version)}/{org15}</metadataServerUrl>"
        "<passwordExpired>false</passwordExpired><sandbox>false</sandbox>"
        f"<serverUrl>{base}/services/Soap/u/{escape(version)}/{org15}</serverUrl>"
        f"<sessionId>{session.token}</sessionId><userId>{user.user_id}</userId>"
        f"<userInfo>{info}</userInfo>"
    )
    body = f"<loginResponse><result>{result}</result></loginResponse>"
    return Response(_ENVELOPE.format(body=body), status=200, content_type="text/xml; charset=utf-8")
