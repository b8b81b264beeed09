"""The HTTP adapter (FastAPI): the REST API, the checkout, transparency and sandbox pages.

An adapter: imports domains (their ``flows`` use cases, schemas and models), the kernel and
the shared modules, never another adapter or the container. Routes receive their services
as ``Annotated`` dependencies (``api/deps.py``: ``DbDep``, ``PaymentsDep``, ...) from the
``ApiServices`` the composition root hands to ``create_app``; the sandbox pages reach the
emulators through the ports in ``api/ports.py``. No route opens a unit of work or imports
SQLAlchemy; ``api/idempotency.py`` is the one piece of transaction plumbing (see
``tests/test_architecture.py``).
"""
