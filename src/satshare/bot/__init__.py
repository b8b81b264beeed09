"""The Telegram bot (python-telegram-bot): UI only, it calls the domain services."""

import os

# Opt in now to PTB's next-major behaviour (durations as timedelta) instead of a warning on
# every rate-limit error; our code reads both forms.
os.environ.setdefault("PTB_TIMEDELTA", "1")
