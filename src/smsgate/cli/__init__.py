"""The `smsgate` command, one module per command group; `main.py` is the root.

``main`` installs each group; a group module imports only the helpers here (``output``,
``context``, ``values``), never the root, so there is no import cycle. ``client`` (send,
balance) needs only the ``cli`` extra; every other group opens the database and needs
``server``.
"""
