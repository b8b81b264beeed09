"""The web admin panel at ``/admin`` (issue #12): an adapter, like the API and the bot.

- ``services.py``: ``AdminServices``, what the panel may use; the composition root builds
  it and mounts the panel through ``ApiServices.mount_panel`` (the panel never gets the
  container, and the API imports no other adapter). The panel's accounts (argon2 hashes,
  roles, lockout) are the ``staff`` domain; the login and the admin-users page call
  ``staff.flows``.
- ``lazy.py``: the stand-in mounted at /admin that builds the panel (``app.mount``) at its
  first request, so a ``serve`` whose panel nobody opens never loads SQLAdmin (#15).
- ``auth.py``: the login, the signed session cookie (idle timeout), CSRF tokens, the
  per-IP slow-down and the guard that sends anything without a session to the login page
  (which returns to the page asked for: ``return_path`` lets only a panel path through).
- ``app.py``: ``Panel``, SQLAdmin with the dashboard as its index, the login's way back, a
  POST logout, and every refusal SQLAdmin or Starlette raises drawn as the panel's page.
- ``views.py``: SQLAdmin model views (read-only lists with search, filters, detail, export;
  the pages show values as a person reads them, the exports as stored).
- ``pages.py``: the Jinja2 pages and workflows (dashboard, payouts desk, users, invoices,
  plans, API keys, ledger, audit log) and ``PAGES``, the list ``app.mount`` registers. Every
  read and every action is a domain flow (the API's own where it has one); a change and its
  audit row commit together (``audit.flows.audited``). The panel opens no unit of work.
- ``reports/dashboard.py`` holds the dashboard's figures (sums of ledger postings through
  ``reports.transparency.aggregate``, the same definitions as the transparency page).
- ``webhook_pages.py``, ``broadcast_pages.py``, ``promo_pages.py``: outgoing webhook
  endpoints (#14), broadcasts and promo codes (#13), registered by ``app.mount`` after
  ``pages.PAGES``; each change is a flow of its domain given the operator as the audit
  ``Actor`` (``forms.py``: what their forms share, and a refused create form drawn again
  with its input). ``static/broadcasts.js`` counts a segment as it is picked and moves the
  progress bars (it polls ``/admin/desk/broadcasts-progress``).
- ``texts.py`` + ``locales/*/LC_MESSAGES/admin.po``: English and Russian.
- ``templates/``, ``static/``: shipped in the package; nothing loads from a CDN.
"""
