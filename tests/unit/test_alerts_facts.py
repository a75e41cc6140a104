from __future__ import annotations

from typing import Any

import pytest

from pbi_taskflow.alerts.facts import auth_advice, build_facts, detect_event, results_from_context
from pbi_taskflow.client.models import RefreshResult, RefreshStatus
from pbi_taskflow.errors import InvalidSecretError, RefreshFailedError, SecretExpiredError
from pbi_taskflow.observability.redact import redact_text


def _result(name: str, status: RefreshStatus, **kw: Any) -> dict[str, Any]:
    return RefreshResult(
        workspace_id="ws-1",
        workspace_name="Finance",
        dataset_id=f"id-{name}",
        dataset_name=name,
        refresh_id=f"rid-{name}",
        kind="enhanced",
        status=status,
        web_url=f"https://app.powerbi.com/groups/ws-1/datasets/id-{name}",
        **kw,
    ).to_dict()


class StubTI:
    """A minimal stand-in for Airflow's runtime task instance (plain attributes, a dict of XComs)."""

    def __init__(self, *, state: str | None = None, try_number: int = 1, max_tries: int = 0, xcom: Any = None) -> None:
        self.dag_id, self.task_id, self.run_id, self.map_index = "nightly", "refresh", "manual__1", -1
        self.state, self.try_number, self.max_tries = state, try_number, max_tries
        self.log_url = "http://localhost:8080/dags/nightly/runs/manual__1/tasks/refresh?try_number=1"
        self._xcom = xcom

    def xcom_pull(self, task_ids: str, key: str) -> Any:
        assert (task_ids, key) == ("refresh", "return_value")
        return self._xcom


def test_results_from_refresh_error() -> None:
    """A RefreshError in the context supplies the datasets without any XCom read."""
    exc = RefreshFailedError("1 failed", results=[_result("Sales", RefreshStatus.FAILED)])
    results = results_from_context({"exception": exc, "ti": StubTI(xcom=RuntimeError("must not be read"))})
    assert [r.dataset_name for r in results] == ["Sales"]


def test_results_from_return_value_xcom() -> None:
    """Without a RefreshError, the task's return_value XCom (list of result dicts) is used."""
    ti = StubTI(xcom=[_result("Sales", RefreshStatus.COMPLETED), {"unrelated": 1}])
    assert [r.status for r in results_from_context({"ti": ti})] == [RefreshStatus.COMPLETED]
    assert results_from_context({"ti": StubTI(xcom="not results")}) == []
    assert results_from_context({}) == []


def test_build_facts_for_failed_refresh() -> None:
    """Facts name DAG, task, run, try, log link and each failed dataset with code, message, id and link."""
    exc = RefreshFailedError(
        "refresh failed",
        results=[
            _result("Sales", RefreshStatus.FAILED, error_code="ModelRefreshFailed", error_message="Column X missing"),
            _result("Inventory", RefreshStatus.COMPLETED),
        ],
    )
    facts = build_facts({"exception": exc, "ti": StubTI(state="failed")})
    assert facts["event"] == "failure"
    assert (facts["dag_id"], facts["task_id"], facts["run_id"], facts["try_number"]) == (
        "nightly", "refresh", "manual__1", 1)
    assert facts["log_url"].endswith("try_number=1")
    assert len(facts["datasets"]) == 2
    [failed] = facts["failed"]
    assert failed["dataset"] == "Sales"
    assert failed["workspace"] == "Finance"
    assert failed["error_code"] == "ModelRefreshFailed"
    assert failed["error_message"] == "Column X missing"
    assert failed["refresh_id"] == "rid-Sales"
    assert failed["web_url"] == "https://app.powerbi.com/groups/ws-1/datasets/id-Sales"
    assert facts["summary"] == "1 of 2 dataset(s) failed in nightly.refresh: Finance/Sales"
    assert facts["auth"] is None


def test_expired_secret_gets_its_own_text() -> None:
    """An expired secret names the app registration and recommends a certificate or federated credential."""
    exc = SecretExpiredError("expired", client_id="1111-2222", tenant_id="contoso", code="AADSTS7000222")
    facts = build_facts({"exception": exc, "ti": StubTI(state="failed")})
    assert facts["title"] == "Power BI authentication failed"
    assert facts["auth"]["client_id"] == "1111-2222"
    advice = facts["auth"]["advice"]
    assert "app registration 1111-2222" in advice
    assert "expired" in advice
    assert "certificate" in advice
    assert "federated" in advice
    assert "secret's value (not its id)" in auth_advice(InvalidSecretError("bad", client_id="x"))


@pytest.mark.parametrize(
    ("ti", "context", "expected"),
    [
        (StubTI(state="up_for_retry"), {"exception": ValueError()}, "retry"),
        (StubTI(state="failed"), {"exception": ValueError()}, "failure"),
        (StubTI(state="success"), {}, "success"),
        (StubTI(), {"reason": "task_failure"}, "failure"),
    ],
)
def test_detect_event(ti: StubTI, context: dict[str, Any], expected: str) -> None:
    """The event comes from the task state, or the DAG-level reason."""
    assert detect_event({**context, "ti": ti}) == expected


def test_redaction_hides_planted_and_pattern_secrets() -> None:
    """Masked values, explicit secrets, bearer tokens, JWTs and secret= pairs never survive redaction."""
    from airflow.sdk.log import mask_secret

    planted = "PlantedSecretValue-9f8e7d"
    mask_secret(planted)
    jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlc2lnbmF0dXJl"
    text = f"boom {planted} Authorization: Bearer abc.def-ghi token {jwt} client_secret=xyz123 https://h/x?sig=SIGVALUE"
    out = redact_text(text, ("https://h/x?sig=SIGVALUE",)) or ""
    for secret in (planted, "abc.def-ghi", jwt, "xyz123", "SIGVALUE"):
        assert secret not in out
    exc = RefreshFailedError(f"failed with {planted}", results=[_result("S", RefreshStatus.FAILED, error_message=planted)])
    assert planted not in repr(build_facts({"exception": exc, "ti": StubTI(state="failed")}))


def test_failed_datasets_come_first() -> None:
    """Datasets are listed failed first, so a shortened list in a chat message still shows the failures."""
    exc = RefreshFailedError("x", results=[_result("A", RefreshStatus.COMPLETED), _result("B", RefreshStatus.FAILED)])
    assert [d["dataset"] for d in build_facts({"exception": exc, "ti": StubTI(state="failed")})["datasets"]] == ["B", "A"]


def test_a_dataflow_is_named_as_one_in_alert_facts() -> None:
    """Alerts list a failed dataflow as "<name> (dataflow)" with item "dataflow", so no template calls it a dataset."""
    flow = {**_result("Sales ETL", RefreshStatus.FAILED), "kind": "dataflow"}
    facts = build_facts({"ti": StubTI(state="failed", xcom=[flow, _result("Sales", RefreshStatus.COMPLETED)])})
    first, second = facts["datasets"]
    assert (first["dataset"], first["item"], first["failed"]) == ("Sales ETL (dataflow)", "dataflow", True)
    assert (second["dataset"], second["item"]) == ("Sales", "dataset")
