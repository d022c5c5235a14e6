"""Log lines never carry a caller's full number; Twilio IDs and ordinary numbers survive."""

from __future__ import annotations

import logging
import re

import pytest

from tests.staff import candidacy_call
from voiceline.logs import MaskPhoneNumbers, mask_numbers, utc_timestamp


@pytest.mark.parametrize(
    "number",
    [
        "+16175550123",
        "16175550123",
        "6175550123",
        "617-555-0123",
        "617.555.0123",
        "617 555 0123",
        "(617) 555-0123",
        "(617)555-0123",
        "1-617-555-0123",
        "+1 617 555 0123",
        "+1 (617) 555-0123",
        "+1-617-555-0123",
    ],
)
def test_us_numbers_are_masked_to_their_last_four_digits(number):
    assert mask_numbers(f"callback for {number}, please") == "callback for •••0123, please"


@pytest.mark.parametrize("edge", ["{}", "phone={}", "({})", "{}.", "x_{}"])
def test_numbers_are_masked_next_to_punctuation(edge):
    masked = mask_numbers(edge.format("+16175550123"))
    assert "617" not in masked and "•••0123" in masked


def test_every_number_in_a_message_is_masked():
    assert mask_numbers("from 617-555-0123 to (212) 555-0100") == "from •••0123 to •••0100"


@pytest.mark.parametrize(
    "text",
    [
        "CA0123456789abcdef0123456789abcdef",
        "call CA01234567890123456789012345678901 ended",
        "RE12345678901234567890123456789012",
        "callback 1234",
        "id=12345",
        "555-0123",
        "5550123",
        "step 3 of 10",
        "2026-11-26 08:00:00",
        "took 1234567890ms",
        "",
    ],
)
def test_sids_short_numbers_and_ordinary_text_are_left_alone(text):
    assert mask_numbers(text) == text


def record(msg: str, args: tuple = (), exc_info=None, **extra) -> logging.LogRecord:
    rec = logging.LogRecord("voiceline.test", logging.INFO, __file__, 1, msg, args, exc_info)
    rec.__dict__.update(extra)
    return rec


def test_filter_masks_message_args_and_keeps_the_record():
    rec = record("callback requested by %s at %s", ("+16175550123", "09:00"))
    assert MaskPhoneNumbers().filter(rec) is True
    assert rec.getMessage() == "callback requested by •••0123 at 09:00"
    assert rec.args == ()


def test_filter_appends_extra_ids_in_a_fixed_order():
    sid = "CA0123456789abcdef0123456789abcdef"
    rec = record("stored", node="menu", call_sid=sid, callback_id=42, unrelated="x")
    MaskPhoneNumbers().filter(rec)
    assert rec.getMessage() == f"stored [call_sid={sid} callback_id=42 node=menu]"


def test_filter_leaves_a_message_without_ids_unbracketed():
    rec = record("100% done", call_sid="", callback_id=None)
    MaskPhoneNumbers().filter(rec)
    assert rec.getMessage() == "100% done"


def test_filter_masks_a_number_given_as_an_extra():
    rec = record("queued", phone="+16175550123", path="/voice/step/menu")
    MaskPhoneNumbers().filter(rec)
    assert rec.getMessage() == "queued [path=/voice/step/menu phone=•••0123]"


def test_filter_masks_exception_text():
    try:
        raise ValueError("could not call +16175550123")
    except ValueError as exc:
        rec = record("failed", exc_info=(type(exc), exc, exc.__traceback__))
    MaskPhoneNumbers().filter(rec)
    assert rec.exc_info is None
    assert "ValueError: could not call •••0123" in rec.exc_text
    assert "6175550123" not in rec.exc_text


def test_filter_withholds_a_database_errors_detail_line():
    """PostgreSQL's constraint errors list the failing row's values (answers, numbers)."""
    error = ('(psycopg.errors.NotNullViolation) null value in column "node" violates not-null constraint\n'
             "DETAIL:  Failing row contains (7, CA1, 3, insurance_carrier, Blue Cross Blue Shield).\n"
             "[SQL: INSERT INTO call_events ...]")
    try:
        raise RuntimeError(error)
    except RuntimeError as exc:
        rec = record("voice webhook failed: %s", (error,), exc_info=(type(exc), exc, exc.__traceback__))
    MaskPhoneNumbers().filter(rec)
    for text in (rec.getMessage(), rec.exc_text):
        assert "Blue Cross" not in text and "DETAIL: (withheld" in text
        assert 'null value in column "node"' in text and "[SQL: INSERT INTO call_events" in text


def test_filter_on_a_handler_masks_what_is_written():
    records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, rec: logging.LogRecord) -> None:
            records.append(self.format(rec))

    handler = Collect()
    handler.addFilter(MaskPhoneNumbers())
    logger = logging.getLogger("voiceline.test_logs")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        logger.info("caller %s keyed %s", "(617) 555-0123", "2125550100", extra={"call_sid": "CA" + "f" * 32})
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    assert records == [f"caller •••0123 keyed •••0100 [call_sid=CA{'f' * 32}]"]


def test_a_bad_format_string_is_left_for_logging_to_report():
    import logging

    from voiceline.logs import MaskPhoneNumbers

    record = logging.LogRecord("voiceline", logging.INFO, __file__, 1, "%s %s", ("only one",), None)
    assert MaskPhoneNumbers().filter(record) is True
    assert record.msg == "%s %s"  # untouched: the handler's own error handling takes over


def test_two_filters_do_not_append_ids_twice():
    import logging

    from voiceline.logs import MaskPhoneNumbers

    record = logging.LogRecord("voiceline", logging.INFO, __file__, 1, "call to 617-555-0123", (), None)
    record.call_sid = "CA" + "f" * 32
    MaskPhoneNumbers().filter(record)
    MaskPhoneNumbers().filter(record)
    assert record.msg.count("call_sid=") == 1 and "555-0123" not in record.msg


def test_an_extra_cannot_start_a_line_of_its_own():
    """A request path is the client's: /voice/x%0a... decodes to a newline."""
    rec = record("rejected unsigned or forged webhook", path="/voice/x\n2026-11-27 ERROR forged: admin\r\x00")
    MaskPhoneNumbers().filter(rec)
    assert "\n" not in rec.getMessage() and "\r" not in rec.getMessage() and "\x00" not in rec.getMessage()
    assert rec.getMessage().endswith("[path=/voice/x\\x0a2026-11-27 ERROR forged: admin\\x0d\\x00]")


def test_the_app_logs_through_a_masking_handler(app):
    """The filter above is only as good as its installation: create_app puts it on the root
    handler every log line is written through."""
    handlers = [h for h in logging.getLogger().handlers if any(isinstance(f, MaskPhoneNumbers) for f in h.filters)]
    assert len(handlers) == 1, "create_app installed no masking handler (or two)"
    rec = record("caller %s", ("+16175550123",), phone="+16175550123")
    assert handlers[0].filter(rec)
    text = handlers[0].format(rec)
    assert "6175550123" not in text and "•••0123" in text


def test_the_code_itself_logs_no_number_before_any_filter(closed_app):
    """What the line's own code emits, seen before the root handler's filter could mask it:
    a call that keys in another number and asks for a callback."""
    emitted: list[str] = []

    class Collect(logging.Handler):
        def emit(self, rec: logging.LogRecord) -> None:
            fields = " ".join(f"{k}={v}" for k, v in vars(rec).items() if k not in ("args", "msg"))
            emitted.append(f"{fields} {rec.getMessage()}")

    logger = logging.getLogger("voiceline")
    handler, level = Collect(level=logging.DEBUG), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        candidacy_call(closed_app, other_number="6175550177")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    text = "\n".join(emitted)
    assert "callback" in text  # the request was logged (by its id)
    for number in ("6175550123", "6175550177"):
        assert number not in text


ISO_UTC = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


def masking_handler() -> logging.Handler:
    [handler] = [h for h in logging.getLogger().handlers if any(isinstance(f, MaskPhoneNumbers) for f in h.filters)]
    return handler


def test_app_lines_have_iso_8601_utc_times(app):
    handler, rec = masking_handler(), record("stored", call_sid="CA" + "f" * 32)
    assert handler.filter(rec)
    text = handler.format(rec)
    assert re.match(rf"^{ISO_UTC} INFO voiceline\.test: stored \[call_sid=CA", text), text


def test_utc_timestamp_says_its_zone():
    assert utc_timestamp(1795786536.1239) == "2026-11-27T13:35:36.123Z"


@pytest.mark.parametrize(("header", "shown"), [
    ("1b4e28ba-2fa1-11d2-883f-0016cb6a1a00", "1b4e28ba-2fa1-11d2-883f-0016cb6a1a00"),
    ("+16175550123-call-me-back", "•••0123-call-me-back"),  # the client's own header when no router replaces it
    ("x" * 201, None),
    ("two words", None),
    ("", None),
])
def test_a_line_logged_in_a_request_carries_its_request_id(app, header, shown):
    with app.test_request_context("/voice/incoming", headers={"X-Request-ID": header}):
        rec = record("stored", call_sid="CA1")
        MaskPhoneNumbers().filter(rec)
    expected = f"stored [call_sid=CA1 request_id={shown}]" if shown else "stored [call_sid=CA1]"
    assert rec.getMessage() == expected


def test_a_webhooks_log_line_and_its_access_line_share_the_request_id(app, client):
    """What is written for a real request, through the app's own handler's filter and format."""
    lines: list[str] = []
    root_handler = masking_handler()

    class Collect(logging.Handler):
        def emit(self, rec: logging.LogRecord) -> None:
            lines.append(self.format(rec))

    handler = Collect()
    handler.addFilter(MaskPhoneNumbers())
    handler.setFormatter(root_handler.formatter)
    logger = logging.getLogger("voiceline")
    logger.addHandler(handler)
    try:
        response = client.post("/voice/incoming", data={"CallSid": "CA1", "From": "+16175550123"},
                               headers={"X-Request-ID": "1b4e28ba-2fa1-11d2-883f-0016cb6a1a00"})
    finally:
        logger.removeHandler(handler)
    assert response.status_code == 403
    [line] = lines
    assert re.match(rf"^{ISO_UTC} WARNING voiceline\.voice\.security: rejected unsigned or forged webhook", line)
    assert line.endswith(" request_id=1b4e28ba-2fa1-11d2-883f-0016cb6a1a00]") and "6175550123" not in line
