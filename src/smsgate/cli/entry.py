"""The `smsgate` entry point: the full CLI when its extra (Typer, rich) is installed, else
the bare install's `send` and `balance` (``lite.py``), which say what to install."""

from __future__ import annotations

import importlib.util
import sys


def main() -> None:
    if all(importlib.util.find_spec(name) is not None for name in ("typer", "rich")):
        from smsgate.cli.main import main as full

        full()
        return
    from smsgate.cli import lite

    sys.exit(lite.main())
