"""SatShare: sell Telegram channel subscriptions for bitcoin; split every sale with affiliates."""

import sys

__version__ = "0.1.0"

# httpx imports its own command-line client (httpx._main: Click, Pygments and Rich's syntax
# highlighting, about 2 MiB resident) whenever those are installed, and Rich brings Pygments.
# No SatShare process runs httpx's CLI (the `httpx` command is its own process), so that
# import is made to fail before httpx is first imported here; httpx then defines the stub
# it has for a missing CLI (#15). An httpx already imported keeps its CLI.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
