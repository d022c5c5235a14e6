"""X-Twilio-Signature on every /voice/ request. Never switched off, in any environment.

Twilio signs the exact URL it requested plus the sorted POST parameters. Behind a
TLS-terminating proxy Flask sees http://internal-host/..., so the URL is rebuilt from
PUBLIC_BASE_URL when set; the path and query are taken from the raw request line, because
werkzeug's request.url may re-encode them (a %2F in an action URL would break the check).
"""

from __future__ import annotations

import hmac
import logging
from urllib.parse import quote, urlsplit

from flask import abort, current_app, request
from twilio.request_validator import (
    SIGNATURE_HEADER,
    SIGNATURE_SETTINGS_HEADER,
    RequestValidator,
    get_signature_algorithm,
)

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


def signature_is_valid(validator: RequestValidator) -> bool:
    signature = request.headers.get(SIGNATURE_HEADER, "")
    if not signature:
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
    """before_request guard of the voice blueprint: 403 and nothing stored when unsigned."""
    validator = current_app.extensions["voiceline.validator"]
    if not signature_is_valid(validator):
        log.warning("rejected unsigned or forged webhook", extra={"path": request.path})
        abort(403)
