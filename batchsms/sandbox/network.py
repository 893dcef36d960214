"""Which addresses count as "this machine only", for the listening socket and for webhook targets.

The sandbox's default credentials are printed in the README, so they protect nothing: the
sandbox is safe only while nothing beyond this machine can reach it, and it may only call
webhooks that stay on this machine. Both questions come down to the same test.
"""

from __future__ import annotations

from ..endpoint import is_loopback_host

__all__ = ["DEFAULT_AUTH_TOKEN", "exposure_warning", "is_loopback_host"]

DEFAULT_AUTH_TOKEN = "sandbox"  # the `batchsms sandbox` token when --auth-token is not given; public


def exposure_warning(host: str, auth_token_is_default: bool) -> str | None:
    """A one-line warning when the sandbox would accept anyone on the network, else None.

    That is the case when it listens beyond loopback (``0.0.0.0``, ``::``, a LAN address, a
    host name, or ``""`` for every interface) while using the published default token: pass
    ``auth_token_is_default=auth_token == DEFAULT_AUTH_TOKEN``, so that spelling the default
    out with ``--auth-token sandbox`` is still warned about.
    """
    if not auth_token_is_default or is_loopback_host(host):
        return None
    where = host or "all interfaces"
    return (f"the sandbox listens on {where} with the default token '{DEFAULT_AUTH_TOKEN}': anyone on your "
            "network can use it; give --auth-token or --host 127.0.0.1")
