"""The admin panel's accounts (issue #12): people who log in at /admin — not API keys, not
Telegram users. Roles (owner, manager, support), argon2id password hashes, the login check
with its lockout, disabling, the sandbox's own login.

- ``models.py`` / ``repository.py``: the ``admin_users`` table and its queries.
- ``service.py``: the rules, in the caller's transaction.
- ``flows.py``: the use cases the panel and ``satshare admin`` call; each opens its unit of
  work and writes the audit log row with the change.

Layer 1: imports audit (layer 0) and the kernel (see ``tests/test_architecture.py``).
"""
