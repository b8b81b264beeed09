"""Outgoing webhooks (issue #14): endpoints, the events SatShare announces, their outbox
and its delivery, signed as the Standard Webhooks specification says.

Writers call ``events.record_*`` in the transaction of the change they announce: one
``webhook_messages`` row (the signed body's content, ``{type, timestamp, data}``) and one
``webhook_deliveries`` row per enabled endpoint that subscribed to the type. ``flows`` sends
them after commit through the ``ports.WebhookSender`` port (an HTTP adapter in
``satshare.providers.webhook_http``), in order per endpoint, with retries on an exponential
backoff with jitter for 24 hours, and logs every attempt.

Layer 0: imports no other domain (everybody may announce an event, as everybody may queue a
message in the outbox), see ``tests/test_architecture.py``. Payloads are built from the
writers' own rows through the protocols in ``payloads``.
"""
