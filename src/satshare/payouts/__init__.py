"""Payouts to affiliates: destinations, the hold-before-send state machine, providers."""
