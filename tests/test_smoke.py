import sqlalchemy as sa

from voiceline.extensions import db
from voiceline.models import Call, CallEvent


def test_greeting_is_a_bilingual_gather_and_the_call_is_stored(app, phone):
    phone.call()
    assert phone.verbs() == ["Gather", "Redirect"]
    assert phone.languages() == {"en-US", "es-US"}
    assert "988" in phone.text().replace(" ", "")
    with app.app_context():
        call = db.session.scalar(sa.select(Call).where(Call.call_sid == phone.call_sid))
        assert call.caller == "+16175550123"
        # The greeting is the call's own row; steps are kept from the first answer on.
        assert db.session.scalars(sa.select(CallEvent).where(CallEvent.call_sid == phone.call_sid)).all() == []
