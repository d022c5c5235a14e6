"""call_history: what a call did, read back from its steps (path, answers, language, outcome)."""

from tests.phone import Phone
from voiceline.call_history import Steps, steps_of, steps_of_calls
from voiceline.extensions import db


def test_steps_of_calls_reads_path_answers_language_and_outcome_in_one_go(app):
    spanish = Phone(app)
    spanish.call()
    spanish.press_through("2", "6", "1", "1", "2", "1")  # Spanish, repeat the menu, candidacy, yes, no, yes
    crisis = Phone(app, from_number="+16175550124")
    crisis.call()
    crisis.press_through("1", "9")  # English, then the crisis key at the main menu

    with app.app_context():
        found = steps_of_calls(db.session, [spanish.call_sid, crisis.call_sid, "CA" + "0" * 32])
        assert found["CA" + "0" * 32] == Steps()  # a call with no steps
        mine = found[spanish.call_sid]
        assert mine.path == ["welcome", "main_menu", "prescreen_age", "prescreen_diagnosis",
                             "prescreen_medications", "prescreen_care"]  # the repeated menu counted once
        assert mine.language == "es" and mine.outcome is None
        assert mine.answers == {"age_18_or_older": "yes", "mood_disorder_diagnosis": "no",
                                "tried_two_antidepressants": "yes"}
        assert mine.reached("main_menu") and not mine.reached("insurance_coverage")
        theirs = found[crisis.call_sid]
        assert theirs.path == ["welcome", "main_menu", "crisis"]
        assert theirs.outcome == "crisis_line" and theirs.language == "en" and theirs.answers == {}
        assert steps_of(db.session, spanish.call_sid) == mine
