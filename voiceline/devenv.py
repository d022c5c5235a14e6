"""Write a development .env with freshly generated secrets (used by `make run`).

Run as `python -m voiceline.devenv .env`; an existing file is left untouched. Only the
standard library is used, so this works before the app itself can start.
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

TEMPLATE = """\
# Written by `make run` for local development. Never use these values in production.
VOICELINE_ENV=development
SECRET_KEY={secret_key}
# Signs simulated Twilio requests (voiceline simulate). Put your real token here to take
# calls from a real Twilio number through a tunnel.
TWILIO_AUTH_TOKEN={auth_token}
# TWILIO_ACCOUNT_SID=AC...
# What transfers ring: a fictional number (555-01xx); put patient services' own here to
# take real calls. Production has no default: the line refuses to start without one.
PATIENT_SERVICES_NUMBER=+16175550100
# PUBLIC_BASE_URL=https://your-tunnel.example.org
# DATABASE_URL=postgresql://postgres@127.0.0.1:5432/voiceline   (default: SQLite in instance/)
BUSINESS_HOURS="Mon-Fri 08:00-18:00; Sat 09:00-13:00"
CLINIC_TIMEZONE=America/New_York
"""


def write_dev_env(path: Path) -> bool:
    if path.exists():
        return False
    path.write_text(TEMPLATE.format(secret_key=secrets.token_hex(32), auth_token=secrets.token_hex(16)))
    path.chmod(0o600)
    return True


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else ".env")
    if write_dev_env(target):
        print(f"wrote {target} with new development secrets")
    else:
        print(f"{target} exists; left as it is")
