"""Adapters that implement ``satshare.payments.ports.PaymentProvider`` over real HTTP."""
