"""gunicorn settings for the floors: the app's gunicorn.conf.py without its post_fork hook
(which loads the Voiceline app), so both are served with the same workers, preload and timeouts."""

import os
import runpy

_APP_CONFIG = os.environ.get("BENCH_APP_GUNICORN_CONF") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "gunicorn.conf.py")

for _name, _value in runpy.run_path(_APP_CONFIG).items():
    if not _name.startswith("_") and _name not in ("os", "gc", "post_fork") and (
            not callable(_value) or _name == "pre_fork"):
        globals()[_name] = _value
