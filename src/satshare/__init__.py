"""SatShare: sell Telegram channel subscriptions for bitcoin; split every sale with affiliates."""

__version__ = "0.1.0"
