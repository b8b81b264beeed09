"""The Telegram bot (python-telegram-bot): UI only, it calls the domains' use cases.

An adapter: imports domains (their ``flows``), the kernel and the shared modules, never
another adapter or the container. Handlers receive a ``BotContext``
(``ContextTypes(context=BotContext)``) exposing the ``BotServices`` the composition root
hands to ``build_runtime``; the outbox sender listens to the ``AfterCommit`` doorbell. The
bot's own table (ids of processed updates) has its model and queries here.
"""

import os

# Opt in now to PTB's next-major behaviour (durations as timedelta) instead of a warning on
# every rate-limit error; our code reads both forms.
os.environ.setdefault("PTB_TIMEDELTA", "1")
