"""docs/deployment.md lists every setting (its table is generated from Settings)."""

from __future__ import annotations

import re
from pathlib import Path

from smsgate.settings import Settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "deployment.md"


def test_every_setting_is_in_the_deployment_page() -> None:
    table = DOC.read_text(encoding="utf-8").split("<!-- settings:start")[1]
    listed = set(re.findall(r"^\| `SMSGATE_([A-Z0-9_]+)` \|", table, re.MULTILINE))
    assert listed == {name.upper() for name in Settings.model_fields}
