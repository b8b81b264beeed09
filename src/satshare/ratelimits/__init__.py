"""Rate limits of the API (issue #14): per API key and per client IP, counted by the
``limits`` library in a shared storage — Redis when ``redis.url`` is set, else this
database (``storage.DatabaseStorage``: the counters of every process meet in PostgreSQL),
or memory for SQLite, which serves one process. ``flows.purge_expired`` forgets ended
windows (the housekeeping job).

Layer 0: imports no other domain (see ``tests/test_architecture.py``).
"""
