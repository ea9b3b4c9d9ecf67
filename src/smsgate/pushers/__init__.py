"""Pushers: how a user reply reaches an account's URL (the ``Pusher`` port)."""
