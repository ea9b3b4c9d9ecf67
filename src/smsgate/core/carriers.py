"""A configured carrier link as the store keeps it and the registry builds it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# The name of the built-in simulator, present unless a configured carrier takes it.
SIMULATOR = "simulator"


@dataclass(frozen=True, slots=True)
class CarrierConfig:
    name: str
    kind: str  # a key of carriers.kinds.KINDS
    options: Mapping[str, Any] = field(default_factory=dict)  # validated by the kind
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class CarrierStatus:
    """What one node last reported of a carrier's live state."""

    name: str
    node: str
    status: Mapping[str, Any]
    updated_at: datetime
