"""Refuse a base URL or credentials that cannot be right, before any request goes out.

A wrong base URL can hand the token to another machine (``http://`` to a remote
host, ``user:pass@`` in the URL), and a credential holding a character a Basic
header cannot carry made every request fail with an exception whose text held the
whole token. Each check raises a one-line ConfigError that names where the value
came from and never shows the secret.
"""

from __future__ import annotations

import ipaddress
import unicodedata
from urllib.parse import urlsplit

from .errors import ConfigError

DEFAULT_BASE_URL = "https://api.fonedynamics.com"

_BASE_URL_WHERE = "the base URL (--base-url, BATCHSMS_BASE_URL or base_url in the config file)"


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and loopback IP literals (127.0.0.0/8, ::1, ::ffff:127.x.x.x).

    Anything else is False, including names such as ``127.0.0.1.evil.com`` that merely look
    like a loopback address: a name is not resolved (DNS can answer anything), so only a
    literal address, or the one name every system maps to loopback, can be trusted.
    """
    host = host.rstrip(".").lower()
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


def check_base_url(url: str, *, allow_insecure: bool) -> str:
    """The API base URL without its trailing slash; ConfigError (one line) when it cannot be right.

    Refused: a scheme other than http(s), no host, a user name or password in it (it
    would travel in every request and land in logs), a query or fragment (the paths
    appended to it would end up inside them), and ``http://`` to a host that is not
    this machine unless ``allow_insecure``: Basic auth in clear text hands the token
    to anyone on the path.
    """
    url = url.strip()
    if not url:
        raise ConfigError(f"{_BASE_URL_WHERE} is empty; leave it unset for {DEFAULT_BASE_URL}")
    if any(ch.isspace() or not ch.isprintable() for ch in url):
        raise ConfigError(f"{_BASE_URL_WHERE} holds a space or a control character; give it as https://host")
    parts = urlsplit(url)
    if "@" in parts.netloc:  # never echo it: the part before @ is a password
        raise ConfigError(f"{_BASE_URL_WHERE} holds a user name or password (user:pass@host); remove it: the "
                          "credentials come from BATCHSMS_ACCOUNT_SID and BATCHSMS_AUTH_TOKEN")
    shown = url if len(url) <= 100 else url[:99] + "…"
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ConfigError(f"{_BASE_URL_WHERE} {shown!r} is not an http(s) URL; give it as https://host")
    if not parts.hostname:
        raise ConfigError(f"{_BASE_URL_WHERE} {shown!r} has no host; give it as https://host")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise ConfigError(f"{_BASE_URL_WHERE} {shown!r} has a port that is not a number from 1 to 65535")
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise ConfigError(f"{_BASE_URL_WHERE} {shown!r} holds a query (?…) or fragment (#…); give only "
                          "https://host and an optional path")
    if scheme == "http" and not allow_insecure and not is_loopback_host(parts.hostname):
        raise ConfigError(f"{_BASE_URL_WHERE} {shown!r} would send the auth token unencrypted to another "
                          "machine; use https:// (or --allow-insecure if the network is yours)")
    return url.rstrip("/")


_CONTROL_NAMES = {"\t": "TAB", "\n": "LINE FEED", "\r": "CARRIAGE RETURN", "\x7f": "DELETE", "\x00": "NUL"}


def _char_name(ch: str) -> str:
    return _CONTROL_NAMES.get(ch) or unicodedata.name(ch, "") or f"U+{ord(ch):04X}"


def _check_credential(value: str, where: str, what: str, *, forbidden: str = "") -> None:
    """ConfigError naming the first character that cannot go into a Basic header, never the value itself.

    A pasted en dash or non-breaking space would otherwise make every request raise
    UnicodeEncodeError, whose text (holding the whole token) ended up in the
    results file and the journal.
    """
    for position, ch in enumerate(value, 1):
        if not "!" <= ch <= "~" or ch in forbidden:
            raise ConfigError(f"{where} holds a character that cannot be sent (position {position}: "
                              f"{_char_name(ch)}); paste the {what} again")


def check_credentials(account_sid: str, auth_token: str, property_sid: str) -> None:
    """ConfigError when a credential or the property is missing or holds a character that cannot be sent."""
    if not account_sid or not auth_token:
        raise ConfigError(
            "no credentials: set BATCHSMS_ACCOUNT_SID and BATCHSMS_AUTH_TOKEN (or the config file), "
            "or try the pipeline with --sandbox"
        )
    if not property_sid:
        raise ConfigError("no property: give --property-sid or set BATCHSMS_PROPERTY_SID")
    _check_credential(account_sid, "BATCHSMS_ACCOUNT_SID (or account_sid in the config file)", "account SID",
                      forbidden=":")
    _check_credential(auth_token, "BATCHSMS_AUTH_TOKEN (or auth_token in the config file)", "token")
    _check_credential(property_sid, "the property SID (--property-sid or BATCHSMS_PROPERTY_SID)",
                      "property SID", forbidden="/?#%\\")
