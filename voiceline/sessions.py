"""Sessions for staff pages only.

Twilio's webhooks never carry a cookie and must never be given one, so a /voice/ request
gets Flask's null session instead of a signed-cookie session: no serializer is built and no
cookie is read or written on the hot path.
"""

from __future__ import annotations

from flask.sessions import SecureCookieSessionInterface


class StaffSessionInterface(SecureCookieSessionInterface):
    def open_session(self, app, request):
        if request.path.startswith("/voice/"):
            return self.make_null_session(app)
        return super().open_session(app, request)
