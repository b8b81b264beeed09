"""The web admin panel at ``/admin`` (issue #12): an adapter, like the API and the bot.

- ``models.py`` / ``repository.py`` / ``accounts.py``: the panel's own users (not API
  keys): argon2 password hashes, roles (owner, manager, support), lockout after failed
  logins.
- ``auth.py``: the login, the signed session cookie (idle timeout), CSRF tokens, the
  per-IP slow-down and the guard that sends anything without a session to the login page.
- ``views.py``: SQLAdmin model views (read-only lists with search, filters, detail, export).
- ``pages.py``: the Jinja2 pages and workflows (dashboard, payouts desk, users, invoices,
  plans, API keys, ledger, audit log); every action calls the same domain service or flow
  the API uses and records an audit event in the same transaction.
- ``dashboard.py``: the dashboard's figures (sums of ledger postings through
  ``reports.transparency.aggregate``, the same definitions as the transparency page).
- ``texts.py`` + ``locales/*/LC_MESSAGES/admin.po``: English and Russian.
- ``templates/``, ``static/``: shipped in the package; nothing loads from a CDN.
"""
