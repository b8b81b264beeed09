"""Alembic migrations of the whole schema (batch mode on SQLite); run by ``satshare migrate``
through ``satshare.migrate``. The only SQL outside repositories besides ``db.py``; imports
nothing of SatShare but what ``env.py`` needs to see every model (``satshare.models``)."""
