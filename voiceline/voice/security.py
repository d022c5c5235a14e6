"""X-Twilio-Signature on every /voice/ request. Never switched off, in any environment.

Twilio signs the exact URL it requested plus the sorted POST parameters. Behind a
TLS-terminating proxy Flask sees http://internal-host/..., so the URL is rebuilt from
PUBLIC_BASE_URL when set; the path and query are taken from the raw request line, because
werkzeug's request.url may re-encode them (a %2F in an action URL would break the check).
"""

from __future__ import annotations

import hmac
import logging
import re
from urllib.parse import quote, urlsplit

from flask import abort, current_app, g, request
from twilio.request_validator import (
    SIGNATURE_HEADER,
    SIGNATURE_SETTINGS_HEADER,
    RequestValidator,
    get_signature_algorithm,
)

from voiceline.logs import one_line

log = logging.getLogger(__name__)


class FormRequestValidator(RequestValidator):
    """The SDK's validator, reading werkzeug's MultiDict with getlist directly (the SDK tries
    getall first and catches the AttributeError, once per parameter, on every webhook)."""

    def get_values(self, param_dict, param_name):
        getlist = getattr(param_dict, "getlist", None)
        if getlist is not None:
            return getlist(param_name)
        return super().get_values(param_dict, param_name)


def origin() -> str:
    """The scheme and host Twilio called: PUBLIC_BASE_URL behind a proxy, else the request's."""
    return current_app.config["PUBLIC_BASE_URL"] or f"{request.scheme}://{request.host}"


def requested_url() -> str:
    """The URL as Twilio requested it."""
    environ = request.environ
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw and raw.startswith(("http://", "https://")):  # absolute-form request line
        parts = urlsplit(raw)
        raw = parts.path + (f"?{parts.query}" if parts.query else "")
    if not raw:
        path = (environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")).encode("latin-1")
        raw = quote(path.decode("utf-8", "replace"), safe="/:@!$&'()*+,;=-._~%")
        if environ.get("QUERY_STRING"):
            raw += "?" + environ["QUERY_STRING"]
    return origin() + raw


# A Twilio signature is base64 of an HMAC-SHA1 or -SHA256: 28 or 44 characters. Anything else
# is refused before the body is read or parsed.
SIGNATURE_FORMAT = re.compile(r"^[A-Za-z0-9+/]{20,86}={0,2}$")
# Twilio's webhook bodies are a few kB; a bigger one is refused (413) before it is parsed.
MAX_VOICE_BODY_BYTES = 32 * 1024


def signature_is_valid(validator: RequestValidator) -> bool:
    signature = request.headers.get(SIGNATURE_HEADER, "")
    if not SIGNATURE_FORMAT.match(signature):
        return False
    algorithm = get_signature_algorithm(request.headers.get(SIGNATURE_SETTINGS_HEADER))
    url = requested_url()
    params = request.form if request.method == "POST" else {}
    try:
        # The common case costs one HMAC: the URL exactly as requested. The SDK's validate()
        # then tries the URL with and without the port, as Twilio's own signing varies.
        if hmac.compare_digest(validator.compute_signature(url, params, algorithm), signature):
            return True
        return validator.validate(url, params, signature, algorithm)
    except ValueError:  # an algorithm we do not know
        return False


def verify_twilio_signature() -> None:
    """before_request guard of the voice blueprint: 403 and nothing stored when unsigned.
    g.twilio_signed marks a request that passed, for the blueprint's error handler."""
    request.max_content_length = MAX_VOICE_BODY_BYTES
    validator = current_app.extensions["voiceline.validator"]
    if not signature_is_valid(validator):
        log_rejection()
        abort(403)
    g.twilio_signed = True


def log_rejection() -> None:
    """A signed request that fails the check is most often a deploy's mistake, not a forgery:
    TLS ends at a proxy, so the URL rebuilt here is not the one Twilio signed. The line says
    which origin the check used (never the query string or a form value: caller data)."""
    if not request.headers.get(SIGNATURE_HEADER):
        log.warning("rejected unsigned or forged webhook", extra={"path": request.path})
        return
    log.warning("rejected unsigned or forged webhook: the signature does not match this URL at origin %s "
                "(if Twilio calls another origin, as when TLS ends at a proxy, set PUBLIC_BASE_URL to it)",
                one_line(origin()), extra={"path": request.path})
