"""The TwiML document cache: documents that repeat are kept, a caller's read-back never is."""

from tests.phone import Phone
from tests.staff import candidacy_call
from voiceline.flow.steps import Hangup, Say
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


def test_no_document_with_a_read_back_is_kept(closed_app):
    """The caller-ID question and the confirmation carry the last four digits of the number,
    the check of a keyed-in number carries all of it. Each caller hears theirs; no document
    holding them stays in the worker's memory, even when the same caller calls again."""
    first = candidacy_call(closed_app, from_number="+16175550123")
    assert "0 1 2 3" in first.text()
    candidacy_call(closed_app, from_number="+16175550123")  # a repeat caller: the same documents again
    for _ in range(2):
        keyed = candidacy_call(closed_app, from_number="+16175550987", other_number="6175550199")
    assert "0 1 9 9" in keyed.text()
    kept = closed_app.extensions["voiceline.twiml"].kept()
    assert kept, "the menus every caller hears are kept"
    assert not [text for text in kept if any(digits in text for digits in ("0 1 2 3", "0 9 8 7", "0 1 9 9"))]


class Recording:
    """The app's document cache, noting every document asked for."""

    def __init__(self, cache):
        self.cache, self.asked = cache, []

    def __call__(self, base, verbs):
        self.asked.append((base, verbs))
        return self.cache(base, verbs)

    def kept(self):
        return self.cache.kept()


def test_a_read_back_is_filled_in_exactly_as_the_sdk_would_build_it(closed_app):
    """Documents with read-backs come from a template with slots: each must equal, to the
    byte, what the twilio SDK builds for it directly. English and Spanish, the caller-ID
    question, a keyed-in number read back, and the confirmation."""
    recording = Recording(closed_app.extensions["voiceline.twiml"])
    closed_app.extensions["voiceline.twiml"] = recording
    candidacy_call(closed_app, from_number="+16175550123")
    candidacy_call(closed_app, from_number="+16175550987", other_number="6175550199")
    spanish = Phone(closed_app, from_number="+16175550456")
    spanish.call()
    spanish.press_through("2", "1", "1", "1", "1", "1", "2", "1", "3", "1", "2")  # español, candidacy, capture
    assert "0 4 5 6" in spanish.text()
    read_backs = [(base, verbs) for base, verbs in recording.asked if twiml._reads_back(verbs)]
    assert len(read_backs) >= 6
    flow = closed_app.extensions["voiceline.flow"]
    with closed_app.test_request_context():
        for base, verbs in read_backs:
            assert recording.cache(base, verbs) == str(twiml.build(flow, verbs, base))


def test_a_read_back_with_characters_xml_escapes_is_filled_in_escaped(app):
    odd = Say("Tom & Jerry <b> \"quoted\" 'single' ñandú 0 1 2 3", "es", personal=True)
    with app.test_request_context():
        flow = app.extensions["voiceline.flow"]
        cache = twiml.DocumentCache(flow)
        gather = twiml.Gather(action=twiml.Target("step", {"node": "main_menu"}), says=(odd, odd, Say("Hola.", "es")),
                              lang="es")
        for verbs in ((odd, Hangup()), (gather,), (Say("Hola.", "es"), odd, odd, Hangup())):
            for _ in range(3):
                assert cache("http://localhost", verbs) == str(twiml.build(flow, verbs, "http://localhost"))
    assert not [text for text in cache.kept() if "Jerry" in text]


def test_an_empty_read_back_sentence_is_built_like_any_other(app):
    with app.test_request_context():
        flow = app.extensions["voiceline.flow"]
        cache = twiml.DocumentCache(flow)
        verbs = (Say("", "en", personal=True), Say("Goodbye.", "en"), Hangup())
        assert cache("http://localhost", verbs) == str(twiml.build(flow, verbs, "http://localhost"))
