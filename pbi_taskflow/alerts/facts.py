"""What an alert says: the facts of a task callback, read from the Airflow context and made safe to send.

Facts come from ``context["exception"]`` when it is a :class:`~pbi_taskflow.errors.RefreshError`
(its ``results``), else from the task's ``return_value`` XCom, else from the task alone. Every string
passes through Airflow's secrets masker and a few patterns (bearer tokens, JWTs, ``secret=`` pairs)
before it reaches a template.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pbi_taskflow.client.models import RefreshResult
from pbi_taskflow.errors import (
    AuthenticationError,
    CertificateError,
    FederatedCredentialError,
    InvalidSecretError,
    RefreshError,
    SecretExpiredError,
    UnknownClientError,
    UnknownTenantError,
)
from pbi_taskflow.observability.redact import redact_tree

__all__ = ["auth_advice", "build_facts", "detect_event", "results_from_context"]

EVENTS = ("failure", "retry", "success")
#: The reason a retry gives a dataset it skips because an earlier try of the same run completed it.
_EARLIER_TRY = re.compile(r"^completed in try \d+ of this DAG run")

def _ti(context: Mapping[str, Any]) -> Any:
    return context.get("ti") or context.get("task_instance")


def results_from_context(context: Mapping[str, Any]) -> list[RefreshResult]:
    """The task's refresh results: from a :class:`RefreshError`, else the ``return_value`` XCom, else ``[]``."""
    exc = context.get("exception")
    if isinstance(exc, RefreshError) and exc.results:
        return [RefreshResult.from_dict(r) for r in exc.results if isinstance(r, Mapping)]
    ti = _ti(context)
    if ti is None or not hasattr(ti, "xcom_pull"):
        return []
    try:
        value = ti.xcom_pull(task_ids=ti.task_id, key="return_value")
    except Exception:  # noqa: BLE001 - no XCom (DAG-level callback, failed task) means no datasets
        return []
    if isinstance(value, Mapping):
        value = [value]
    if not isinstance(value, (list, tuple)):
        return []
    return [RefreshResult.from_dict(v) for v in value if isinstance(v, Mapping) and "dataset_id" in v]


def detect_event(context: Mapping[str, Any]) -> str:
    """``failure``, ``retry`` or ``success``, from the task state (or DAG-level ``reason``) in ``context``."""
    ti = _ti(context)
    state = str(getattr(getattr(ti, "state", None), "value", getattr(ti, "state", "")) or "").lower()
    if state == "up_for_retry":
        return "retry"
    if state == "failed":
        return "failure"
    reason = str(context.get("reason") or "").lower()
    if context.get("exception") is not None or "fail" in reason:
        try_number, max_tries = getattr(ti, "try_number", None), getattr(ti, "max_tries", None)
        task = getattr(ti, "task", None)
        retries = getattr(task, "retries", 0) or 0
        if not reason and retries and isinstance(try_number, int) and isinstance(max_tries, int):
            return "retry" if try_number <= max_tries else "failure"
        return "failure"
    return "success"


def auth_advice(exc: AuthenticationError) -> str:
    """What to do about an authentication failure, naming the app registration concerned."""
    app = f"app registration {exc.client_id}" if exc.client_id else "the connection's app registration"
    tenant = f" in tenant {exc.tenant_id}" if exc.tenant_id else ""
    better = (
        "Better: switch the connection to a certificate (auth_method=certificate) or a federated credential "
        "(auth_method=federated), which avoid expiring secrets."
    )
    if isinstance(exc, SecretExpiredError):
        return (
            f"The client secret of {app}{tenant} has expired. Create a new secret in Entra ID (App registrations > "
            f"Certificates & secrets) and put its value in the Airflow connection's password. {better}"
        )
    if isinstance(exc, InvalidSecretError):
        return (
            f"Entra ID rejected the client secret of {app}{tenant}. Check that the connection's password holds the "
            f"secret's value (not its id). {better}"
        )
    if isinstance(exc, UnknownClientError):
        return f"No {app} exists{tenant}. Check the connection's login (client id) and tenant_id."
    if isinstance(exc, UnknownTenantError):
        return f"The tenant{tenant or ''} does not exist. Check the connection's tenant_id and cloud."
    if isinstance(exc, FederatedCredentialError):
        return (
            f"No federated credential of {app}{tenant} matches the presented token. Check the credential's issuer, "
            "subject and audience in Entra ID against the workload identity."
        )
    if isinstance(exc, CertificateError):
        return f"The certificate of {app}{tenant} is unusable or was rejected. Check the PEM and its upload in Entra ID."
    return f"Entra ID refused a token to {app}{tenant}. Check the connection's credentials."


def _no_retry(exc: object) -> bool:
    """Whether ``exc`` fails the task without Airflow retries (``AirflowFailException``, as fail-fast errors are)."""
    if not isinstance(exc, BaseException):
        return False
    from pbi_taskflow.airflow.compat import task_exception

    return isinstance(exc, task_exception("AirflowFailException"))


def _dataset(result: RefreshResult) -> dict[str, Any]:
    """The facts of one item; a dataflow's ``dataset`` (its name, as alerts show it) says ``(dataflow)``."""
    name = result.dataset_name or result.dataset_id
    return {
        "workspace": result.workspace_name or result.workspace_id,
        "workspace_id": result.workspace_id,
        "dataset": f"{name} (dataflow)" if result.kind == "dataflow" else name,
        "item": result.noun,
        "dataset_id": result.dataset_id,
        "status": result.status.value,
        "failed": not result.succeeded,
        "error_code": result.error_code,
        "error_message": result.error_message,
        "refresh_id": result.refresh_id,
        "kind": result.kind,
        "duration_s": result.duration_s,
        "web_url": result.web_url,
        "reason": result.reason,
        "start": result.start,
        "end": result.end,
    }


def _task(context: Mapping[str, Any]) -> dict[str, Any]:
    ti = _ti(context)
    dag = context.get("dag")
    try:
        log_url = getattr(ti, "log_url", None)
    except Exception:  # noqa: BLE001 - a missing [api] base_url must not stop the alert
        log_url = None
    return {
        "dag_id": getattr(ti, "dag_id", None) or getattr(dag, "dag_id", None),
        "task_id": getattr(ti, "task_id", None),
        "run_id": context.get("run_id") or getattr(ti, "run_id", None),
        "try_number": getattr(ti, "try_number", None),
        "max_tries": getattr(ti, "max_tries", None),
        "map_index": getattr(ti, "map_index", None),
        "log_url": log_url if isinstance(log_url, str) else None,
    }


def _names(datasets: list[dict[str, Any]], limit: int = 3) -> str:
    shown = ", ".join(f"{d['workspace']}/{d['dataset']}" for d in datasets[:limit])
    return shown + (" ..." if len(datasets) > limit else "")


_TITLES = {
    "failure": "Power BI refresh failed",
    "retry": "Power BI refresh failed, will retry",
    "success": "Power BI refresh succeeded",
}


def build_facts(
    context: Mapping[str, Any], *, event: str | None = None, title: str | None = None, secrets: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Everything an alert template may use, with secrets hidden.

    Keys: ``event``, ``title``, ``summary``, ``dag_id``, ``task_id``, ``run_id``, ``try_number``,
    ``max_tries``, ``final`` (True when the error fails the task without its remaining retries, because
    no retry can fix it), ``map_index``, ``log_url``, ``partial`` (a success with failed datasets, as
    ``fail_policy="all"`` allows; the title then says so), ``datasets`` (one dict per dataset, failed ones
    first), ``listed`` (``datasets`` without ``earlier``: the ones an alert lists one by one), ``earlier``
    (the datasets a retry skipped because an earlier try of the run completed them), ``earlier_summary``
    (one line naming them, or None), ``failed`` (the failed ones), ``error`` (``type``, ``message``, ``code``,
    ``request_id`` or None) and ``auth`` (``client_id``, ``tenant_id``, ``code``, ``advice`` or None).

    :param context: the Airflow callback context.
    :param event: ``failure``, ``retry`` or ``success``; detected from the context when None.
    :param title: a headline replacing the default one.
    :param secrets: further strings to hide (for example the webhook URL).
    """
    event = event or detect_event(context)
    task = _task(context)
    datasets = sorted((_dataset(r) for r in results_from_context(context)), key=lambda d: not d["failed"])
    failed = [d for d in datasets if d["failed"]]
    exc = context.get("exception")
    error = None
    if isinstance(exc, BaseException):
        error = {
            "type": type(exc).__name__,
            "message": str(exc),
            "code": getattr(exc, "code", None),
            "request_id": getattr(exc, "request_id", None),
        }
    auth = None
    if isinstance(exc, AuthenticationError):
        auth = {"client_id": exc.client_id, "tenant_id": exc.tenant_id, "code": exc.code, "advice": auth_advice(exc)}
    earlier = [d for d in datasets if d["status"] == "Skipped" and _EARLIER_TRY.match(d["reason"] or "")]
    listed = [d for d in datasets if d not in earlier]
    partial = event == "success" and bool(failed)
    noun = "item(s)" if any(d["item"] == "dataflow" for d in datasets) else "dataset(s)"
    headline = title or ("Power BI authentication failed" if auth else _TITLES.get(event, _TITLES["failure"]))
    if partial and not title:
        headline = f"Power BI refresh succeeded with {len(failed)} of {len(datasets)} {noun} failed"
    where = f"{task['dag_id']}.{task['task_id']}"
    if failed:
        names = _names(failed)
        summary = f"{len(failed)} of {len(datasets)} {noun} failed in {where}: {names}"
        if partial:
            summary += " (the task succeeded: its fail_policy fails it only when every dataset fails)"
    elif datasets:
        summary = f"{len(datasets)} dataset(s) refreshed by {where}"
    elif error:
        summary = f"{where} failed: {error['type']}"
    else:
        summary = f"{where}: {event}"
    facts = {
        "event": event,
        "title": headline,
        "summary": summary,
        **task,
        "final": _no_retry(exc),
        "partial": partial,
        "datasets": datasets,
        "listed": listed,
        "earlier": earlier,
        "earlier_summary": f"{len(earlier)} completed in an earlier try: {_names(earlier)}" if earlier else None,
        "failed": failed,
        "error": error,
        "auth": auth,
    }
    redacted: dict[str, Any] = redact_tree(facts, secrets)
    return redacted
