"""Twilio's own HTTP client, keeping response bodies as bytes (recordings are audio, not text)."""

from __future__ import annotations

from requests import Request, Session
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response


class BinaryHttpClient(TwilioHttpClient):
    def request(self, method, url, params=None, data=None, headers=None, auth=None, timeout=None,
                allow_redirects=False):
        session = self.session or Session()
        prepared = session.prepare_request(Request(method.upper(), url, params=params, data=data,
                                                   headers=headers, auth=auth))
        response = session.send(prepared, allow_redirects=allow_redirects, timeout=timeout or self.timeout or 10)
        return Response(int(response.status_code), response.content, response.headers)
