"""smsgate: a self-hosted SMS gateway that speaks the SMSBao HTTP API."""

__version__ = "0.1.0"
