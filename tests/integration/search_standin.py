"""A local stand-in for Google's Indexing API (with its OAuth token endpoint) and IndexNow.

Served in a thread on 127.0.0.1; every request is checked against the documented shapes and
recorded; a request that does not match is answered 400 and recorded in ``errors``.

* ``POST /token``: the service account's JWT-bearer grant (RFC 7523;
  https://developers.google.com/identity/protocols/oauth2/service-account#httprest): form
  ``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<JWT>``, the JWT signed
  RS256 by the test's key, ``iss`` the account's email, ``aud`` Google's token endpoint,
  ``scope`` the indexing scope. Answers ``{access_token, expires_in, token_type}``.
* ``POST /v3/urlNotifications:publish``: ``Authorization: Bearer <issued token>``,
  ``Content-Type: application/json``, body exactly ``{url, type}``
  (https://developers.google.com/search/apis/indexing-api/v3/using-api).
* ``POST /batch``: ``multipart/mixed``, each part ``application/http`` holding one publish
  request as above; answered ``multipart/mixed`` with ``Content-ID: <response-item-N>``.
* ``POST /indexnow``: ``Content-Type: application/json; charset=utf-8``, body
  ``{host, key, keyLocation?, urlList}`` with every URL on ``host``
  (https://www.indexnow.org/documentation).
"""

from __future__ import annotations

import email
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
SCOPE = "https://www.googleapis.com/auth/indexing"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TYPES = {"URL_UPDATED", "URL_DELETED"}
FORBIDDEN = "403"


class SearchStandIn:
    def __init__(self, *, indexnow_key: str, indexnow_host: str) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.client_email = "indexer@gateway-tests.iam.gserviceaccount.com"
        self.indexnow_key = indexnow_key
        self.indexnow_host = indexnow_host
        self.lock = threading.Lock()
        self.tokens: set[str] = set()
        self.grants = 0
        self.google: list[dict[str, Any]] = []  # {url, type, batch: bool}
        self.google_requests = 0
        self.indexnow: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self.fail_next = 0  # answer the next N API requests 503 with Retry-After: 1
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> SearchStandIn:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    def service_account_file(self, path) -> str:
        """A key file as the Cloud console makes it; its token_uri is Google's (the gateway's
        setting points the grant at the stand-in)."""
        pem = self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        path.write_text(
            json.dumps(
                {
                    "type": "service_account",
                    "project_id": "gateway-tests",
                    "private_key_id": "test-key-1",
                    "private_key": pem,
                    "client_email": self.client_email,
                    "client_id": "1234567890",
                    "token_uri": GOOGLE_TOKEN_AUDIENCE,
                }
            )
        )
        return str(path)

    # ------------------------------------------------------------------ reading

    def updates(self, url: str, type_: str) -> int:
        with self.lock:
            return sum(1 for n in self.google if n["url"] == url and n["type"] == type_)

    def indexnow_count(self, url: str) -> int:
        with self.lock:
            return sum(post["urlList"].count(url) for post in self.indexnow)

    # ------------------------------------------------------------------ checks

    def _error(self, text: str) -> None:
        with self.lock:
            self.errors.append(text)

    def _token(self, form: dict[str, list[str]]) -> tuple[int, dict]:
        if form.get("grant_type") != [JWT_BEARER] or len(form.get("assertion", [])) != 1:
            return 400, {"error": "unsupported_grant_type"}
        try:
            claims = jwt.decode(
                form["assertion"][0],
                self.key.public_key(),
                algorithms=["RS256"],
                audience=GOOGLE_TOKEN_AUDIENCE,
                options={"require": ["iss", "aud", "iat", "exp", "scope"]},
            )
        except jwt.PyJWTError as exc:
            return 400, {"error": "invalid_grant", "error_description": type(exc).__name__}
        if claims["iss"] != self.client_email or SCOPE not in claims["scope"].split():
            return 400, {"error": "invalid_scope"}
        token = "ya29." + secrets.token_urlsafe(24)
        with self.lock:
            self.tokens.add(token)
            self.grants += 1
        return 200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}

    def _authorized(self, headers) -> bool:
        auth = headers.get("Authorization", "")
        with self.lock:
            return auth.startswith("Bearer ") and auth[7:] in self.tokens

    def _publish(self, content_type: str, body: bytes, *, batch: bool) -> str | None:
        """Record one publish request; an error text if its shape is wrong."""
        if content_type.split(";")[0].strip() != "application/json":
            return f"publish content type {content_type!r}"
        try:
            data = json.loads(body)
        except ValueError:
            return "publish body is not JSON"
        if set(data) != {"url", "type"} or data["type"] not in TYPES:
            return f"publish body {data!r}"
        if "/forbidden/" in data["url"]:
            return FORBIDDEN  # as Google answers a URL whose site ownership is not verified
        with self.lock:
            self.google.append({"url": data["url"], "type": data["type"], "batch": batch})
        return None

    def _batch(self, content_type: str, body: bytes) -> tuple[int, str, bytes]:
        message = email.message_from_bytes(
            b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
        )
        if not message.is_multipart() or message.get_content_subtype() != "mixed":
            return 400, "text/plain", b"not multipart/mixed"
        answers = []
        boundary = "batch_answer_" + secrets.token_hex(8)
        for part in message.get_payload():
            if part.get_content_type() != "application/http":
                return 400, "text/plain", b"part is not application/http"
            raw = part.get_payload(decode=True) or b""
            head, _, inner_body = raw.replace(b"\r\n", b"\n").partition(b"\n\n")
            lines = head.decode().split("\n")
            if lines[0].split()[:2] != ["POST", "/v3/urlNotifications:publish"]:
                return 400, "text/plain", f"inner request {lines[0]!r}".encode()
            inner = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
            inner = {k.lower(): v for k, v in inner.items()}
            error = self._publish(inner.get("content-type", ""), inner_body.strip(), batch=True)
            if error and error != FORBIDDEN:
                self._error(error)
            ident = (part.get("Content-ID") or "<>").strip("<>")
            status = {None: "200 OK", FORBIDDEN: "403 Forbidden"}.get(error, "400 Bad Request")
            answers.append(
                f"--{boundary}\r\nContent-Type: application/http\r\n"
                f"Content-ID: <response-{ident}>\r\n\r\nHTTP/1.1 {status}\r\n"
                "Content-Type: application/json; charset=UTF-8\r\n\r\n{}\r\n"
            )
        payload = "".join(answers) + f"--{boundary}--\r\n"
        return 200, f"multipart/mixed; boundary={boundary}", payload.encode()

    def _indexnow(self, content_type: str, body: bytes) -> int:
        if content_type.replace(" ", "").lower() != "application/json;charset=utf-8":
            self._error(f"indexnow content type {content_type!r}")
            return 400
        data = json.loads(body)
        allowed = {"host", "key", "keyLocation", "urlList"}
        if not ({"host", "key", "urlList"} <= set(data) <= allowed):
            self._error(f"indexnow body keys {sorted(data)}")
            return 400
        if data["key"] != self.indexnow_key:
            return 403
        if data["host"] != self.indexnow_host or any(
            urlsplit(u).hostname != data["host"] for u in data["urlList"]
        ):
            self._error(f"indexnow urls not on host {data['host']}")
            return 422
        with self.lock:
            self.indexnow.append({**data, "at": time.time()})
        return 200

    def _handler(self):
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _answer(self, status: int, content_type: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                content_type = self.headers.get("Content-Type", "")
                path = self.path
                if path == "/token":
                    if content_type.split(";")[0] != "application/x-www-form-urlencoded":
                        standin._error(f"token content type {content_type!r}")
                    status, answer = standin._token(parse_qs(body.decode()))
                    if status != 200:
                        standin._error(f"token refused: {answer}")
                    self._answer(status, "application/json", json.dumps(answer).encode())
                    return
                with standin.lock:
                    failing = standin.fail_next > 0 and path != "/token"
                    standin.fail_next -= int(failing)
                if failing:
                    self.send_response(503)
                    self.send_header("Retry-After", "1")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if path in ("/v3/urlNotifications:publish", "/batch"):
                    if not standin._authorized(self.headers):
                        standin._error(f"{path} without a valid bearer token")
                        self._answer(401, "application/json", b'{"error":{"code":401}}')
                        return
                    with standin.lock:
                        standin.google_requests += 1
                    if path == "/batch":
                        self._answer(*standin._batch(content_type, body))
                        return
                    error = standin._publish(content_type, body, batch=False)
                    if error and error != FORBIDDEN:
                        standin._error(error)
                    status = {None: 200, FORBIDDEN: 403}.get(error, 400)
                    self._answer(status, "application/json", b"{}")
                    return
                if path == "/indexnow":
                    self._answer(standin._indexnow(content_type, body), "text/plain", b"")
                    return
                standin._error(f"unexpected POST {path}")
                self._answer(404, "text/plain", b"")

        return Handler
