"""PostgreSQL stops answering mid-run: callers are still put through or told the hours, fast,
and the same app object stores calls again once the database is back.

The app reaches PostgreSQL through a small TCP proxy the test controls. Two ways of losing
the database, switched synchronously between two webhook requests:

- refuse: the port refuses new connections and every open one is reset (a server that died);
- blackhole: new connections are accepted but never forwarded and open ones are no longer
  read (a server or network that stops answering; nothing ever fails fast by itself).

PostgreSQL only: the sqlite variant of `database_url` is skipped; with TEST_DATABASE_URL set
(CI) an unreachable server fails the run in the fixture.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
import time

import pytest
import sqlalchemy as sa

from tests.phone import SATURDAY_EVENING, Phone, parse, twilio_post
from voiceline.extensions import db
from voiceline.voice.breaker import COOLDOWN_SECONDS, Breaker
from voiceline.models import Call, CallbackRequest, CallEvent

pytestmark = pytest.mark.slow

PATIENT_SERVICES = "+18885668774"
HOURS_EN = "Our hours are Monday through Friday, 8 AM to 6 PM, Eastern time."
HOURS_ES = "Atendemos llamadas de lunes a viernes"
CONFIRMATION = "call you back at the number ending in"
TWILIO_GIVES_UP = 15.0
BOUND = 10.0  # each fallback answer must come back well inside Twilio's 15 s

FORWARD, REFUSE, BLACKHOLE = "forward", "refuse", "blackhole"


# ---- the proxy -------------------------------------------------------------------------------
class _Side(asyncio.Protocol):
    """One socket of a proxied pair: what it reads is written to the other socket."""

    def __init__(self, pair: _Pair):
        self.pair = pair
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport):
        self.transport = transport
        if self is self.pair.client:
            transport.pause_reading()  # until the upstream side is connected
            proxy = self.pair.proxy
            proxy.pairs.add(self.pair)
            proxy.tasks.add(task := proxy.loop.create_task(proxy.connect_upstream(self.pair)))
            task.add_done_callback(proxy.tasks.discard)

    def data_received(self, data):
        peer = self.pair.upstream if self is self.pair.client else self.pair.client
        if peer is not None and peer.transport is not None:
            peer.transport.write(data)

    def connection_lost(self, exc):
        self.pair.close()


class _Pair:
    def __init__(self, proxy: PgProxy):
        self.proxy = proxy
        self.client = _Side(self)
        self.upstream: _Side | None = None
        self.closed = False

    def transports(self):
        return [side.transport for side in (self.client, self.upstream)
                if side is not None and side.transport is not None and not side.transport.is_closing()]

    def pause(self):
        for transport in self.transports():
            transport.pause_reading()

    def resume(self):
        for transport in self.transports():
            transport.resume_reading()

    def close(self, *, reset: bool = False):
        if self.closed:
            return
        self.closed = True
        self.proxy.pairs.discard(self)
        for transport in self.transports():
            if reset:  # SO_LINGER 0: the peer gets an RST, as from a crashed server
                transport.get_extra_info("socket").setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                transport.abort()
            else:
                transport.close()


class PgProxy:
    """127.0.0.1:<port> in front of PostgreSQL; `set_mode` returns once the mode is in force."""

    def __init__(self, upstream: tuple[str, int]):
        self.upstream = upstream
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="pg-proxy", daemon=True)
        self.pairs: set[_Pair] = set()
        self.tasks: set[asyncio.Task] = set()
        self.mode = FORWARD
        self.server: asyncio.Server | None = None
        self.port = 0

    def start(self) -> PgProxy:
        self.thread.start()
        self._call(self._listen())
        return self

    def set_mode(self, mode: str) -> None:
        self._call(self._set_mode(mode))

    def stop(self) -> None:
        self._call(self._shutdown())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()

    def _call(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=10)

    # in the proxy's own thread from here on
    async def _listen(self):
        # The same port again after a refusal: the app's URL does not change.
        self.server = await self.loop.create_server(lambda: _Pair(self).client, "127.0.0.1", self.port,
                                                    reuse_address=True)
        self.port = self.server.sockets[0].getsockname()[1]

    async def connect_upstream(self, pair: _Pair):
        if self.mode != FORWARD:
            return  # accepted, never forwarded: the client's bytes stay unread
        try:
            await self.loop.create_connection(lambda: self._upstream_side(pair), *self.upstream)
        except OSError:
            pair.close(reset=True)
            return
        if pair.closed:
            pair.upstream.transport.close()
        elif self.mode == FORWARD:
            pair.resume()
        else:
            pair.pause()  # the mode changed while it connected

    def _upstream_side(self, pair: _Pair) -> _Side:
        pair.upstream = _Side(pair)
        return pair.upstream

    async def _set_mode(self, mode: str):
        self.mode = mode
        if mode == REFUSE:
            await self._stop_listening()
            for pair in list(self.pairs):
                pair.close(reset=True)
        elif mode == BLACKHOLE:
            for pair in list(self.pairs):
                pair.pause()
        else:
            if self.server is None:
                await self._listen()
            for pair in list(self.pairs):
                if pair.upstream is None:
                    pair.close(reset=True)  # held in the black hole; its client gave up long ago
                else:
                    pair.resume()  # the server answers again, queued bytes and all

    async def _stop_listening(self):
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None

    async def _shutdown(self):
        await self._stop_listening()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for pair in list(self.pairs):
            pair.close(reset=True)
        await asyncio.sleep(0)  # let the transports finish closing


@pytest.fixture
def proxied_url(database_url):
    """The test database's URL, through a proxy on a free port (yielded with the proxy)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only (a TCP proxy in front of the server)")
    url = sa.engine.make_url(database_url)
    proxy = PgProxy((url.host or "127.0.0.1", url.port or 5432)).start()
    yield proxy, url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    proxy.stop()


# ---- helpers ---------------------------------------------------------------------------------
def timed(proxy: PgProxy, action):
    """Run one webhook in a thread; (result, seconds). A request still running when Twilio
    would have given up fails the test (after letting the database answer, so nothing hangs)."""
    outcome: dict = {}

    def run():
        start = time.monotonic()
        try:
            outcome["result"] = action()
        except BaseException as exc:  # noqa: BLE001 (re-raised in the test thread)
            outcome["error"] = exc
        outcome["seconds"] = time.monotonic() - start

    thread = threading.Thread(target=run, name="webhook")
    started = time.monotonic()
    thread.start()
    thread.join(TWILIO_GIVES_UP + 5)
    if thread.is_alive():
        proxy.set_mode(FORWARD)
        thread.join(60)
        pytest.fail(f"a webhook was still running after {time.monotonic() - started:.1f} s with the "
                    f"database not answering: Twilio gives up at {TWILIO_GIVES_UP:.0f} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("result"), outcome["seconds"]


def closed_hours(app):
    app.extensions["voiceline.clock"] = lambda: SATURDAY_EVENING
    return app


def stored_call(app, call_sid: str) -> Call | None:
    with app.app_context():
        return db.session.scalar(sa.select(Call).where(Call.call_sid == call_sid))


def events(app, call_sid: str) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(CallEvent)
                                 .where(CallEvent.call_sid == call_sid))


def assert_transfers(phone: Phone, lang: str | None = None):
    dial = phone.doc.find("Dial")
    assert dial is not None and dial.find("Number").text == PATIENT_SERVICES, phone.text()
    if lang:
        assert phone.languages() == {f"{lang}-US"}
    assert CONFIRMATION not in phone.text()


def assert_tells_the_hours(phone: Phone, lang: str | None = None):
    text = phone.text()
    assert (HOURS_EN in text) if lang != "es" else (HOURS_ES in text), text
    assert "9 1 1" in text and phone.doc.find("Dial") is None
    assert CONFIRMATION not in text and "termina en" not in text  # nothing confirmed that was not stored


# ---- the test --------------------------------------------------------------------------------
@pytest.mark.parametrize("failure", [REFUSE, BLACKHOLE])
def test_database_stops_answering_mid_run_then_comes_back(make_app, proxied_url, database_url, failure):
    proxy, url = proxied_url
    open_app = make_app(DATABASE_URL=url, BUSINESS_HOURS="24/7")
    closed_app = closed_hours(make_app(DATABASE_URL=url, BUSINESS_HOURS="Mon-Fri 08:00-18:00"))
    check = make_app()  # straight to PostgreSQL, to look at what was stored
    # The breakers' clock is the test's: "a few seconds later" is a step, not a sleep.
    clock = [0.0]
    for app in (open_app, closed_app):
        app.extensions["voiceline.breaker"] = Breaker(cooldown=COOLDOWN_SECONDS, clock=lambda: clock[0])

    # Before: the line works through the proxy, and calls are under way on both apps.
    warm = [Phone(open_app, from_number=f"+1617555{n:04d}") for n in range(3)]
    for phone in warm:
        phone.call()
        phone.press("1")
        assert stored_call(check, phone.call_sid) is not None
    spanish = Phone(open_app, from_number="+16175550200")
    spanish.call()
    spanish.press("2")
    capturing = Phone(closed_app, from_number="+16175550201")
    capturing.call()
    capturing.press_through("1", "5", "1", "2", "1")  # closed: callback capture, up to the message
    assert "message" in capturing.action()

    # Every attempt to reach the database, counted where the app makes it: a new connection,
    # or a pooled one checked out (its ping). Counted first, before the ping can fail.
    attempts = [0]

    def attempted(*_args):
        attempts[0] += 1

    for app in (open_app, closed_app):
        with app.app_context():
            sa.event.listen(db.engine, "do_connect", attempted)
            sa.event.listen(db.engine, "checkout", attempted, insert=True)

    proxy.set_mode(failure)
    latencies: list[tuple[str, float]] = []
    reached_for: list[str] = []  # the webhooks that tried the database

    def measure(label, action):
        before = attempts[0]
        result, seconds = timed(proxy, action)
        latencies.append((label, seconds))
        if attempts[0] != before:
            reached_for.append(label)
        assert seconds < BOUND, f"{label}: {seconds:.1f} s"
        return result

    # During: every answer is a way forward, in time.
    for n in range(3):
        phone = Phone(open_app, from_number=f"+1617555{10 + n:04d}")
        measure(f"open greeting {n + 1}", phone.call)
        assert_transfers(phone)
    measure("open, mid-call in Spanish", lambda: spanish.press("1"))
    assert_transfers(spanish, "es")
    for n in range(2):
        phone = Phone(closed_app, from_number=f"+1617555{20 + n:04d}")
        measure(f"closed greeting {n + 1}", phone.call)
        assert_tells_the_hours(phone)
    measure("closed, the crisis key at the fallback", lambda: phone.press("9"))
    assert phone.doc.find("Dial/Number").text == "988"
    measure("closed, final callback step", lambda: capturing.press("2"))
    assert_tells_the_hours(capturing, "en")
    status = measure("status callback", lambda: twilio_post(
        open_app.test_client(), "/voice/status", warm[0].fields(CallStatus="completed", CallDuration="30")))
    assert list(parse(status)) == []  # an empty <Response/>: never the caller's fallback
    health = measure("healthz", lambda: open_app.test_client().get("/healthz"))
    assert health.status_code == 503
    # Once a worker has seen the outage, callers stop waiting for it: only each app's first
    # webhook tried the database (the breaker); /healthz always asks the database itself.
    assert reached_for == ["open greeting 1", "closed greeting 1", "healthz"], latencies

    proxy.set_mode(FORWARD)
    clock[0] += COOLDOWN_SECONDS + 1

    # After: the same app objects store calls again, with no restart.
    for app, name in ((open_app, "open"), (closed_app, "closed")):
        phone = Phone(app, from_number="+16175550300" if name == "open" else "+16175550301")
        phone.call()
        phone.press("1")
        assert stored_call(check, phone.call_sid) is not None, f"{name}: the first call after recovery"
        assert events(check, phone.call_sid) == 1  # the language choice (the greeting is the call row)
    again = Phone(closed_app, from_number="+16175550302")
    again.call()
    again.press_through("1", "5", "1", "2", "1", "2")
    assert CONFIRMATION in again.text()
    with check.app_context():
        [request] = db.session.scalars(sa.select(CallbackRequest).where(
            CallbackRequest.call_sid == again.call_sid)).all()
        assert request.phone == "+16175550302"
        # Nothing was stored for the caller whose last step fell into the outage.
        assert db.session.scalar(sa.select(CallbackRequest).where(
            CallbackRequest.call_sid == capturing.call_sid)) is None
    assert open_app.test_client().get("/healthz").status_code == 200

    print(f"\n[{failure}] fallback latencies: "
          + ", ".join(f"{label} {seconds:.2f}s" for label, seconds in latencies))
