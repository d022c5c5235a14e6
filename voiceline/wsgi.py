"""The WSGI entry point gunicorn serves (see Procfile): a start-up error is one clear line."""

import sys

from voiceline import StartupError, create_app

try:
    app = create_app()
except StartupError as exc:
    print(f"voiceline: cannot start: {exc}", file=sys.stderr, flush=True)
    sys.exit(4)
