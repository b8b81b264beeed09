"""A `satshare` process started before it is needed (a helper of bench/faults.py).

Most of a cold start of `satshare serve` is importing Python modules. This interpreter
imports what `serve` needs, then waits for one JSON line on stdin:
``{"argv": ["--config", "x.yaml", "serve"], "env": {"SATSHARE_FAULT_POINTS": "..."}}``.
It then sets the environment, has ``satshare.faultpoints`` read it again (the module reads
SATSHARE_FAULT_POINTS when it is loaded, and every call site looks ``reached`` up on the
module, so reloading it arms them all, as a cold start with the variable set would) and
runs the command. Nothing else of satshare has run before: no configuration read, no
database opened. An empty line or end of input exits.

    python -m bench.warm_serve
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import sys

PRELOAD = (
    "satshare.cli",
    "satshare.api.app",
    "satshare.bot.app",
    "satshare.container",
    "satshare.jobs",
    "uvicorn",
    "uvloop",
    # What `serve` itself imports on its way up (where they exist in this version).
    "anyio.streams.memory",
    "anyio.streams.stapled",
    "procrastinate.worker",
    "rich._emoji_codes",
    "uvicorn.protocols.http.httptools_impl",
    "uvicorn.protocols.websockets.websockets_sansio_impl",
)


def main() -> None:
    if os.environ.get("SATSHARE_FAULT_POINTS"):
        sys.exit("warm_serve: SATSHARE_FAULT_POINTS is given on stdin, not in the environment")
    for name in PRELOAD:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    line = sys.stdin.readline().strip()
    if not line:
        return
    order = json.loads(line)
    os.environ.update(order.get("env", {}))
    from satshare import faultpoints

    importlib.reload(faultpoints)
    sys.argv = ["satshare", *order["argv"]]
    from satshare.cli import main as satshare_main

    satshare_main()


if __name__ == "__main__":
    main()
