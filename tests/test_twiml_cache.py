"""The TwiML document cache: documents that repeat are kept, a caller's read-back never is."""

from tests.phone import Phone
from voiceline.flow.engine import Hangup, Say
from voiceline.voice import twiml


def counting_builds(monkeypatch) -> list:
    built = []
    real = twiml.build

    def build(flow, verbs, base=None):
        built.append(verbs)
        return real(flow, verbs, base)

    monkeypatch.setattr(twiml, "build", build)
    return built


def test_a_document_is_kept_the_second_time_it_is_asked_for(app, monkeypatch):
    built = counting_builds(monkeypatch)
    verbs = (Say("Goodbye.", "en"), Hangup())
    with app.test_request_context():
        cache = twiml.DocumentCache(app.extensions["voiceline.flow"])
        texts = [cache("http://localhost", verbs) for _ in range(4)]
    assert len(built) == 2  # the first ask notes it, the second keeps it, later asks are served kept
    assert len(set(texts)) == 1 and "<Hangup />" in texts[0]
    assert cache.kept() == [texts[0]]


def test_the_cache_is_bounded(app):
    with app.test_request_context():
        cache = twiml.DocumentCache(app.extensions["voiceline.flow"], size=2)
        for word in ("One.", "Two.", "Three.", "Four.", "Five."):
            for _ in range(2):
                cache("http://localhost", (Say(word, "en"), Hangup()))
    assert 1 <= len(cache.kept()) <= 2


def callback_call(app, from_number: str) -> Phone:
    phone = Phone(app, from_number=from_number)
    phone.call()
    phone.press_through("1", "1", "1", "1", "1", "1", "2")  # English, candidacy, five answers
    phone.press_through("1", "1", "2", "2")  # this number, morning, no clinic name, no message
    return phone


def test_a_callback_read_back_is_sent_but_never_kept(closed_app):
    """The caller ID question and the confirmation carry the number's last four digits:
    each caller hears theirs, and no document holding them stays in the worker's memory."""
    first = callback_call(closed_app, "+16175550123")
    assert "0 1 2 3" in first.text()
    second = callback_call(closed_app, "+16175550987")
    assert "0 9 8 7" in second.text()
    kept = closed_app.extensions["voiceline.twiml"].kept()
    assert kept, "the menus both callers heard are kept"
    assert not [text for text in kept if "0 1 2 3" in text or "0 9 8 7" in text]
