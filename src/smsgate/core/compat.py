"""Answers for clients that know only the provider's documented codes.

Some SMSBao clients fail badly on any code outside SMSBao's own list (an exception with
an empty message). For an account with the ``provider_codes`` setting, each of smsgate's
extension codes is answered as its nearest documented one; the table is protocol.md's
("Provider-codes-only answers"). Logs, the JSON API and the console keep the real code.
"""

from __future__ import annotations

from types import MappingProxyType

from smsgate import errors
from smsgate.errors import ErrorCode

# The provider's documented codes: everything else is an smsgate extension.
DOCUMENTED = frozenset({"0", "-1", "30", "40", "41", "42", "43", "50", "51"})

NEAREST: MappingProxyType[str, ErrorCode] = MappingProxyType(
    {
        errors.QUERY_TOO_FREQUENT.wire: errors.IP_NOT_ALLOWED,  # an access restriction
        errors.FREQUENCY_LIMIT.wire: errors.IP_NOT_ALLOWED,
        errors.BAD_SIGNATURE.wire: errors.SENSITIVE_WORD,  # the content was refused
        errors.TEMPLATE_REQUIRED.wire: errors.SENSITIVE_WORD,
        errors.CONTENT_TOO_LONG.wire: errors.SENSITIVE_WORD,
        errors.OPTED_OUT.wire: errors.BAD_PHONE,  # the number was refused
        errors.BAD_PRODUCT.wire: errors.PARAMS_INCOMPLETE,  # a parameter is wrong
    }
)


def provider_code(code: ErrorCode) -> ErrorCode:
    """The documented code a provider-codes-only client is answered with for ``code``."""
    return NEAREST.get(code.wire, code)
