"""Template-based upstream providers: which approved template a message is, and its values.

Alibaba Cloud and Tencent Cloud send no free text: a request names a template the provider
approved (its code) and the values of its variables, and the signature separately. An
operator maps an approved smsgate template to the provider's code
(``smsgate template set-upstream ID --carrier C --code CODE``). At send time the carrier
finds the mapped template the content matches and reads the values out of the content;
content that matches none cannot go through that provider, so a product routed through one
refuses it at accept time (``54``), before anything is charged.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from smsgate import errors
from smsgate.core.signatures import extract_signature
from smsgate.core.templates import Template
from smsgate.errors import Rejected

TEMPLATE_KINDS = frozenset({"aliyun", "tencent"})
"""Carrier kinds that send template codes and values instead of text."""


@dataclass(frozen=True, slots=True)
class UpstreamTemplate:
    """An approved smsgate template and the code the provider knows it by."""

    template_id: int
    carrier: str
    code: str
    template: Template


@dataclass(frozen=True, slots=True)
class TemplateSend:
    """What a template-based provider is sent for one message."""

    code: str
    sign_name: str  # the signature, without 【】
    names: tuple[str, ...]  # placeholder names in order of first appearance
    values: Mapping[str, str]

    def ordered_values(self) -> list[str]:
        """The values in placeholder order (Tencent's ``TemplateParamSet``)."""
        return [self.values[name] for name in self.names]


def match_upstream(content: str, mapped: Iterable[UpstreamTemplate]) -> TemplateSend | None:
    """The first mapped template ``content`` matches, with its values; None when none does.

    Raises ``Rejected(52)`` when the content has no well-formed signature (the provider
    needs one as a separate field).
    """
    for entry in mapped:
        values = entry.template.values(content)
        if values is not None:
            return TemplateSend(
                code=entry.code,
                sign_name=extract_signature(content),
                names=entry.template.names,
                values=values,
            )
    return None


def check_upstream_templates(
    content: str,
    route: Sequence[str],
    template_carriers: Collection[str],
    mapped: Mapping[str, Sequence[UpstreamTemplate]],
) -> None:
    """Refuse (54) content a template-based carrier on the product's route could not send.

    Every template-based carrier of the route must have a mapped template the content
    matches: failover may hand the message to any of them, and a message that is taken
    cannot move to another carrier afterwards.
    """
    for carrier in route:
        if carrier in template_carriers and not any(
            entry.template.matches(content) for entry in mapped.get(carrier, ())
        ):
            raise Rejected(
                errors.TEMPLATE_REQUIRED,
                f"content matches no template mapped for upstream carrier {carrier!r}",
            )
