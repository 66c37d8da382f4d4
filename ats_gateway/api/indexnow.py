"""The IndexNow key file, when the job pages live on the gateway's own host ([22]).

IndexNow checks that a submitter owns the host by fetching ``https://{host}/{key}.txt``, whose
body is the key (https://www.indexnow.org/documentation, "Verifying ownership via a text key
file"). When ``ATS_GATEWAY_INDEXNOW_KEY`` is set and the IndexNow host is the gateway's
(``ATS_GATEWAY_PUBLIC_URL``'s) host, the gateway serves that file itself; when the job pages
are on the career site's host, the career site serves it (README: search engines).
The key is public by design (anyone can read the file); it proves control of the host only.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, Response

from ats_gateway.extensions import services
from ats_gateway.metadata.openapi import Operation
from ats_gateway.metadata.openapi import Response as Documented
from ats_gateway.security import public


def init_app(app: Flask) -> None:
    settings = app.config["SETTINGS"]
    notifier = services(app).search
    engine = notifier.engines.get("indexnow")
    if engine is None or engine.key_location:
        return
    if urlsplit(settings.public_url).hostname != engine.host:
        return
    path = f"/{engine.key}.txt"

    @public()
    def indexnow_key() -> Response:
        response = Response(engine.key, mimetype="text/plain")
        response.headers["Cache-Control"] = "public, max-age=3600"
        return response

    app.add_url_rule(path, "indexnow_key", indexnow_key, methods=["GET"])
    services(app).metadata.add_operations(
        [
            Operation(
                "GET",
                path,
                "The IndexNow key file",
                tag="feeds",
                description="Its body is the IndexNow key: search engines fetch it to verify "
                "that the gateway's host sends the job page notifications.",
                responses={
                    200: Documented("The key", schema={"type": "string"}, media_type="text/plain")
                },
            )
        ]
    )
