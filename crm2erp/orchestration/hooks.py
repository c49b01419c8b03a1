"""Airflow hooks: an Airflow Connection becomes a crm2erp connector's settings.

Registered as connection types through the provider entry point
(:mod:`crm2erp.orchestration.provider`), so the Airflow UI offers
"crm2erp SQL database", "crm2erp API (HTTP)" and "crm2erp Salesforce" with
fitting field labels. Which hook reads a connection is decided by the Airflow
Connection's type; a connection of another type (``postgres``, ``generic``...)
is read by the hook matching the connector type.

Every secret read is registered with :func:`crm2erp.redact.register_secret`
and Airflow's own secrets masker, so neither crm2erp's messages nor the task
log show it.
"""

from __future__ import annotations

__all__ = [
    "Crm2ErpHook",
    "SqlConnectionHook",
    "ApiConnectionHook",
    "SalesforceConnectionHook",
    "HOOKS",
    "hook_for",
    "connector_settings",
    "STATE_CONN_ID",
    "STATE_CONN_ENV",
    "state_url",
]

import logging
import os
from typing import Any, ClassVar

import sqlalchemy as sa
from airflow.sdk import BaseHook

from crm2erp.errors import ConfigError
from crm2erp.redact import register_secret
from crm2erp.store.state import ENV_URL

STATE_CONN_ID = "crm2erp_state"
STATE_CONN_ENV = "CRM2ERP_STATE_CONN_ID"  # another Connection id for the state store

log = logging.getLogger(__name__)

_SECRET_WORDS = ("password", "secret", "token", "key")


def _mask(value: Any) -> None:
    """Keep ``value`` out of crm2erp's messages and Airflow's task logs."""
    if isinstance(value, str) and value:
        register_secret(value)
        try:
            from airflow.sdk.log import mask_secret

            mask_secret(value)
        except Exception:  # outside a task process there is no masker to feed
            log.debug("Airflow secrets masker not available")


def _mask_extra(extra: Any, secret: bool = False) -> None:
    if isinstance(extra, dict):
        for key, value in extra.items():
            _mask_extra(value, secret or any(w in str(key).lower() for w in _SECRET_WORDS))
    elif secret:
        _mask(extra)


class Crm2ErpHook(BaseHook):
    """Generic hook: the Connection's extra JSON is laid over the YAML settings.

    Subclasses add the typed fields (host, login, password...) of their kind.
    """

    conn_name_attr: ClassVar[str] = "crm2erp_conn_id"
    default_conn_name: ClassVar[str] = "crm2erp_default"
    conn_type: ClassVar[str] = "crm2erp"
    hook_name: ClassVar[str] = "crm2erp connector (extra JSON = settings)"

    def __init__(self, crm2erp_conn_id: str = default_conn_name, **kwargs: Any):
        super().__init__(**kwargs)
        self.crm2erp_conn_id = crm2erp_conn_id

    def settings(self, connector_type: str, base: dict[str, Any],
                 conn: Any = None) -> dict[str, Any]:
        """The connector settings: ``base`` (from the YAML) with this connection's over it."""
        from crm2erp.engine.memory import deep_merge

        conn = conn or self.get_connection(self.crm2erp_conn_id)
        _mask(conn.password)
        extra = conn.extra_dejson if conn.extra else {}
        _mask_extra(extra)
        return deep_merge(base, self.fields(conn, connector_type, base, dict(extra)))

    def fields(self, conn: Any, connector_type: str, base: dict[str, Any],
               extra: dict[str, Any]) -> dict[str, Any]:
        return extra


class SqlConnectionHook(Crm2ErpHook):
    """SQL databases: host/port/login/password/schema(=database) build ``url``.

    Extra: ``drivername`` (default ``postgresql+psycopg``; ``mysql+pymysql``,
    ``sqlite``...), ``query`` (URL query options), ``url`` (a full URL instead
    of the fields), and any SQL connector setting (``schema``, ``timezone``).
    """

    conn_type = "crm2erp_sql"
    hook_name = "crm2erp SQL database"

    def fields(self, conn, connector_type, base, extra):
        url = extra.pop("url", None)
        driver = extra.pop("drivername", None) or "postgresql+psycopg"
        query = extra.pop("query", None) or {}
        if url is None:
            url = sa.URL.create(
                driver, username=conn.login or None, password=conn.password or None,
                host=conn.host or None, port=conn.port or None,
                database=conn.schema or None, query=query,
            ).render_as_string(hide_password=False)
        return {**extra, "url": url}


def _url_field(connector_type: str) -> str:
    """The connector's base-URL setting: instance_url, base_url or url."""
    try:
        from crm2erp.registry import load_connector_class

        fields = load_connector_class(connector_type).Config.model_fields
    except ConfigError:
        fields = {}
    return next((f for f in ("instance_url", "base_url", "url") if f in fields), "base_url")


_AUTH_FIELDS = {  # auth type -> (setting for login, setting for password)
    "basic": ("username", "password"),
    "session_login": ("username", "password"),
    "client_credentials": ("client_id", "client_secret"),
    "jwt_bearer": ("client_id", "private_key"),
    "api_key": (None, "key"),
    "bearer": (None, "token"),
}


class ApiConnectionHook(Crm2ErpHook):
    """HTTP APIs: host is the base URL; login/password fill the ``auth`` block.

    Which auth fields they fill depends on ``auth.type`` (from the extra JSON
    or the YAML): client_credentials -> client_id/client_secret, basic and
    session_login -> username/password, api_key -> key, bearer -> token,
    jwt_bearer -> client_id/private_key. Without a type, login + password
    mean basic auth and a password alone a bearer token.
    """

    conn_type = "crm2erp_api"
    hook_name = "crm2erp API (HTTP)"

    def fields(self, conn, connector_type, base, extra):
        out = dict(extra)
        if conn.host:
            host = conn.host if "://" in conn.host else f"https://{conn.host}"
            out[_url_field(connector_type)] = f"{host}:{conn.port}" if conn.port else host
        auth = dict(extra.get("auth") or {})
        base_auth = base.get("auth") if isinstance(base.get("auth"), dict) else {}
        kind = auth.get("type") or base_auth.get("type")
        if kind in (None, "none") and conn.password:
            kind = "basic" if conn.login else "bearer"
            auth["type"] = kind
        login_field, password_field = _AUTH_FIELDS.get(kind, (None, None))
        if login_field and conn.login:
            auth[login_field] = conn.login
        if password_field and conn.password:
            auth[password_field] = conn.password
        if auth:
            out["auth"] = auth
        return out


class SalesforceConnectionHook(ApiConnectionHook):
    """Salesforce orgs: host = instance URL, login/password = connected-app
    client id and secret (OAuth 2.0 client credentials)."""

    conn_type = "crm2erp_salesforce"
    hook_name = "crm2erp Salesforce"

    def fields(self, conn, connector_type, base, extra):
        if not (extra.get("auth") or {}).get("type") and not (base.get("auth") or {}).get("type"):
            extra = {**extra, "auth": {**(extra.get("auth") or {}),
                                       "type": "client_credentials"}}
        return super().fields(conn, connector_type, base, extra)


HOOKS: dict[str, type[Crm2ErpHook]] = {
    hook.conn_type: hook
    for hook in (Crm2ErpHook, SqlConnectionHook, ApiConnectionHook, SalesforceConnectionHook)
}
_BY_CONNECTOR = {"sql": SqlConnectionHook, "salesforce": SalesforceConnectionHook,
                 "file": Crm2ErpHook}


def hook_for(airflow_conn_type: str | None, connector_type: str) -> type[Crm2ErpHook]:
    """The hook class for an Airflow Connection type, else for the connector type."""
    if airflow_conn_type in HOOKS:
        return HOOKS[airflow_conn_type]
    return _BY_CONNECTOR.get(connector_type, ApiConnectionHook)


def connector_settings(conn_id: str, connector_type: str,
                       base: dict[str, Any] | None = None) -> dict[str, Any]:
    """The settings of a ``connector_type`` connector from Airflow Connection ``conn_id``."""
    try:
        conn = BaseHook.get_connection(conn_id)
    except Exception as exc:  # AirflowNotFoundException and friends
        raise ConfigError(f"Airflow Connection {conn_id!r} (named by airflow_conn_id in "
                          f"connections.yaml) cannot be read: {exc}; create it in the "
                          "Airflow UI (Admin > Connections) or with `airflow connections "
                          "add`") from None
    hook = hook_for(conn.conn_type, connector_type)(crm2erp_conn_id=conn_id)
    log.info("crm2erp: settings of a %s connection from Airflow Connection %s (%s)",
             connector_type, conn_id, hook.hook_name)
    return hook.settings(connector_type, dict(base or {}), conn)


def state_url() -> str:
    """The state store URL of a task: ``$CRM2ERP_STATE_URL``, else the Airflow
    Connection ``crm2erp_state`` (or the id in ``$CRM2ERP_STATE_CONN_ID``).

    Neither is a ConfigError, so the task fails at once: under Airflow there is
    no fallback to a SQLite file in the worker's folder, where every worker
    (pod, Celery host) would start from an empty store and sync everything again.
    """
    url = os.environ.get(ENV_URL)
    if url:
        return url
    conn_id = os.environ.get(STATE_CONN_ENV) or STATE_CONN_ID
    try:
        conn = BaseHook.get_connection(conn_id)
    except Exception as exc:  # AirflowNotFoundException and friends
        raise ConfigError(
            f"no state store configured for this task: {ENV_URL} is not set and the "
            f"Airflow Connection {conn_id!r} cannot be read ({exc}); create it, e.g. "
            f"`airflow connections add {conn_id} --conn-type crm2erp_sql --conn-host db "
            "--conn-login crm2erp --conn-password ... --conn-schema crm2erp`, or set "
            f"{ENV_URL} on every worker (crm2erp does not fall back to a SQLite file in "
            "the worker's folder under Airflow)") from None
    hook = hook_for(conn.conn_type, "sql")(crm2erp_conn_id=conn_id)
    log.info("crm2erp: state store from Airflow Connection %s", conn_id)
    return hook.settings("sql", {}, conn)["url"]
