"""Pre-flight checks: before any refresh starts, can each dataset's data sources be reached?

For every target dataset the checks read its data sources (``GET …/datasources``) and the gateway data sources they
are bound to (``Default.GetBoundGatewayDatasources``), then each bound one's status on its gateway
(``GET /gateways/{id}/datasources/{id}/status``). A data source fails the check when it is not bound to a gateway,
when its gateway is offline, or when it has no (or refused) credentials: a refresh would fail on it, so the task
fails before starting any refresh, saying which dataset, which data source and what to do.

What the checks cannot tell does not block a refresh. A read Power BI refuses (401/403: a service principal needs
to be an admin of a gateway to read its status, and may lack the rights to read a model's data sources) or answers
404 for (a gateway the caller cannot see) is reported as *not checked*, with the reason and what would let the check
run, and the refresh goes ahead: the refresh itself is the final judge. Transient faults follow the client's
:class:`~pbi_taskflow.client.retry.RetryPolicy`; one that outlasts it means Power BI cannot be reached, and the error
is raised before anything starts, as any other call's would be.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from pbi_taskflow.client.models import Datasource, Target
from pbi_taskflow.engine.lineage import reads_semantic_model
from pbi_taskflow.errors import (
    NotFoundError,
    PermissionDeniedError,
    PowerBIHTTPError,
    PreflightFailedError,
    TokenExpiredError,
)

OK, FAIL, UNCHECKED = "ok", "fail", "unchecked"

#: Power BI error codes of a gateway that cannot be reached, and of a data source without usable credentials
GATEWAY_OFFLINE_CODES = ("gatewayunreachable", "gatewayoffline", "gatewaynotreachable", "gatewaycommunication")
NO_CREDENTIAL_CODES = ("nocredential", "credentialsmissing", "credentialsnotspecified")
BAD_CREDENTIAL_CODES = ("invalidcredential", "credentialsinvalid", "accessunauthorized")

FIX_NOT_BOUND = ("map it to a gateway connection or a cloud connection in the semantic model's settings (Gateway and "
                 "cloud connections), or bind the dataset with Default.BindToGateway")
FIX_OFFLINE = ("start the on-premises data gateway (or a member of its cluster) and check it shows online under "
               "Manage connections and gateways")
FIX_NO_CREDENTIALS = ("enter the data source's credentials (the semantic model's settings, Data source credentials, or "
                      "the gateway connection's settings)")
FIX_BAD_CREDENTIALS = "update the data source's credentials: the source refuses the stored ones"


@dataclasses.dataclass(frozen=True)
class SourceCheck:
    """The verdict on one data source (or on the dataset, when ``datasource`` is ``None``).

    :param verdict: ``ok``, ``fail`` (a refresh would fail on it) or ``unchecked`` (the check could not tell).
    :param datasource: how a person recognises the data source.
    :param problem: what was found.
    :param fix: what to do about it (``None`` for ``ok``).
    """

    verdict: str
    datasource: str | None
    problem: str
    fix: str | None = None

    def text(self) -> str:
        """What was found, naming the data source."""
        return (f"data source {self.datasource!r}: " if self.datasource else "") + self.problem

    def line(self) -> str:
        """What was found and what to do."""
        return self.text() + (f" -> {self.fix}" if self.fix else "")


@dataclasses.dataclass(frozen=True)
class DatasetCheck:
    """The pre-flight verdicts of one dataset."""

    workspace: str
    dataset: str
    checks: tuple[SourceCheck, ...]

    @property
    def failures(self) -> list[SourceCheck]:
        return [c for c in self.checks if c.verdict == FAIL]

    @property
    def unchecked(self) -> list[SourceCheck]:
        return [c for c in self.checks if c.verdict == UNCHECKED]

    @property
    def verdict(self) -> str:
        """``fail`` when any data source fails, else ``unchecked`` when any could not be checked, else ``ok``."""
        return FAIL if self.failures else UNCHECKED if self.unchecked else OK

    @property
    def name(self) -> str:
        """``'workspace'/'dataset'``, the prefix of its lines."""
        return f"{self.workspace!r}/{self.dataset!r}"

    def lines(self) -> list[str]:
        """One line per verdict, prefixed with the dataset (for logs)."""
        return [f"{self.name}: {c.line()}" for c in self.checks]


def _code(exc: PowerBIHTTPError) -> str:
    return (exc.code or "").replace("_", "").replace(" ", "").lower()


def _refused(exc: Exception) -> bool:
    return isinstance(exc, PermissionDeniedError) and not isinstance(exc, TokenExpiredError)


def _status(client: Any, source: Datasource, dataset: str) -> SourceCheck:
    """The verdict on a bound data source, from its gateway's status answer."""
    label = source.label
    gateway = f"gateway {source.gateway_id}"
    try:
        client.check_gateway_datasource(source, dataset=dataset)
    except (PermissionDeniedError, NotFoundError) as exc:
        if not (_refused(exc) or isinstance(exc, NotFoundError)):
            raise
        return SourceCheck(UNCHECKED, label, f"bound to {gateway}, whose status the service principal may not read "
                           f"(HTTP {exc.status}{', ' + exc.code if exc.code else ''}); the refresh goes ahead",
                           "make the app an admin of the gateway (or its connection's user) to let the check read it")
    except PowerBIHTTPError as exc:
        if exc.status not in (400, 409):
            raise
        code = _code(exc)
        if any(c in code for c in GATEWAY_OFFLINE_CODES):
            return SourceCheck(FAIL, label, f"{gateway} is offline ({exc.code})", FIX_OFFLINE)
        if any(c in code for c in NO_CREDENTIAL_CODES):
            return SourceCheck(FAIL, label, f"no credentials on {gateway} ({exc.code})", FIX_NO_CREDENTIALS)
        if any(c in code for c in BAD_CREDENTIAL_CODES):
            return SourceCheck(FAIL, label, f"credentials refused through {gateway} ({exc.code})", FIX_BAD_CREDENTIALS)
        return SourceCheck(FAIL, label, f"{gateway} cannot reach it ({exc.code or exc.status})",
                           "check the data source's connection details and credentials on the gateway")
    return SourceCheck(OK, label, f"reachable through {gateway} with its credentials")


def check_dataset(client: Any, target: Target) -> DatasetCheck:
    """The pre-flight verdicts of ``target``'s dataset (see the module docstring for what blocks and what does not).

    :param client: a :class:`~pbi_taskflow.client.sync.PowerBIClient`.
    """
    def done(*checks: SourceCheck) -> DatasetCheck:
        return DatasetCheck(target.workspace_name, target.dataset_name, tuple(checks))

    try:
        sources = client.bound_datasources(target)
    except PermissionDeniedError as exc:
        if not _refused(exc):
            raise
        return done(SourceCheck(UNCHECKED, None, f"the service principal may not read the dataset's data sources "
                                f"(HTTP {exc.status}{', ' + exc.code if exc.code else ''}), so they were not checked; "
                                "the refresh goes ahead",
                                "give the app Contributor, Member or Admin on the workspace to let the check run"))
    if not sources:
        return done(SourceCheck(OK, None, "no data sources listed: nothing to check"))
    checks = []
    for source in sources:
        if not source.bound and reads_semantic_model(source):
            checks.append(SourceCheck(OK, source.label, "a Power BI semantic model (composite model): read inside Power "
                                      "BI, no gateway needed"))
        elif not source.bound:
            checks.append(SourceCheck(FAIL, source.label, "not bound to a gateway or cloud connection, so a refresh "
                                      "cannot reach it", FIX_NOT_BOUND))
        else:
            checks.append(_status(client, source, target.dataset_name))
    return done(*checks)


def check_targets(client: Any, targets: Iterable[Target]) -> list[DatasetCheck]:
    """:func:`check_dataset` for each target, in order."""
    return [check_dataset(client, target) for target in targets]


def require_ready(checks: Iterable[DatasetCheck]) -> None:
    """Raise :class:`PreflightFailedError` listing every failing data source and its fix, if any fails."""
    problems = [f"{check.name}: {c.line()}" for check in checks for c in check.failures]
    if not problems:
        return
    listed = "".join(f"\n  - {p}" for p in problems)
    datasets = len({p.split(": ", 1)[0] for p in problems})
    msg = (f"Pre-flight checks found {len(problems)} problem(s) in {datasets} dataset(s); no refresh was started:"
           f"{listed}")
    raise PreflightFailedError(msg, problems=problems)


__all__ = ["DatasetCheck", "SourceCheck", "check_dataset", "check_targets", "require_ready"]
