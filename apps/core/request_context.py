"""Facts about the caller that several apps record: client IP and user agent.

The client IP is the socket peer, unless that peer is a trusted proxy (`SFP_TRUSTED_PROXIES`),
in which case the right-most untrusted address of `X-Forwarded-For` is taken.
"""

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def _valid_ip(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def client_ip(request: HttpRequest) -> str | None:
    peer = _valid_ip(request.META.get("REMOTE_ADDR", ""))
    trusted = set(settings.SFP_TRUSTED_PROXIES)
    if peer in trusted:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        for hop in reversed([part for part in forwarded.split(",") if part.strip()]):
            address = _valid_ip(hop)
            if address and address not in trusted:
                return address
    return peer


def user_agent(request: HttpRequest) -> str:
    return request.META.get("HTTP_USER_AGENT", "")[:512]
