"""The `smsgate` command, one module per command group; `main.py` is the root.

``main`` registers each group; a group module imports only ``output`` and ``context``
from here, never the root, so there is no import cycle. ``client`` (send, balance) needs
only the ``cli`` extra; every other group opens the database and needs ``server``.
"""
