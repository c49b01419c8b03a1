"""The steward's console: ``crm2erp serve``, a local web app over the state store.

This module stays light (no web framework imported): the CLI checks the bind
address here before anything heavy loads. The app itself is in
:mod:`crm2erp.console.app`.
"""

from __future__ import annotations

__all__ = ["PASSWORD_ENV", "DEFAULT_HOST", "DEFAULT_PORT", "is_loopback", "check_bind",
           "allowed_hosts"]

import ipaddress

from crm2erp.errors import ConfigError

PASSWORD_ENV = "CRM2ERP_CONSOLE_PASSWORD"
DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8765


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:   # a host name: it may resolve to anything
        return False


def check_bind(host: str, password: str | None) -> None:
    """Refuse to listen beyond this machine without a password."""
    if not is_loopback(host) and not password:
        raise ConfigError(f"--host {host} is reachable from other machines: set "
                          f"{PASSWORD_ENV} in the environment to require a password "
                          "(or bind to 127.0.0.1)")


LOOPBACK_NAMES = ["127.0.0.1", "localhost", "::1", "[::1]"]


def allowed_hosts(host: str) -> list[str] | None:
    """The ``Host`` headers to answer: on loopback the loopback names only (a page
    on another site cannot reach the console by DNS rebinding); else any (the
    password guards it)."""
    return sorted({host, *LOOPBACK_NAMES}) if is_loopback(host) else None
