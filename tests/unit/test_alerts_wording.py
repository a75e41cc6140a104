"""Alerts never contradict themselves: a success with failed datasets (``fail_policy="all"``) says so in every
channel, and datasets a retry skipped because an earlier try completed them fill one line, not the list."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pbi_taskflow.alerts.facts import build_facts
from pbi_taskflow.alerts.templating import load_template
from pbi_taskflow.client.models import RefreshResult, RefreshStatus, Target
from pbi_taskflow.engine.tries import CarryOver

CHANNELS = (("teams_card.json.j2", "json"), ("slack_blocks.json.j2", "json"), ("email.html.j2", "html"),
            ("email.txt.j2", "text"))


def _result(name: str, status: RefreshStatus, **kw: Any) -> RefreshResult:
    return RefreshResult(workspace_id="ws-1", workspace_name="Finance", dataset_id=f"id-{name}", dataset_name=name,
                         refresh_id=f"rid-{name}", kind="standard", status=status, **kw)


class StubTI:
    def __init__(self, state: str, xcom: Any, try_number: int = 1, max_tries: int = 0) -> None:
        self.dag_id, self.task_id, self.run_id, self.map_index = "nightly", "refresh", "manual__1", -1
        self.state, self.try_number, self.max_tries, self._xcom = state, try_number, max_tries, xcom
        self.log_url = None

    def xcom_pull(self, task_ids: str, key: str) -> Any:
        return self._xcom


def _render(facts: dict[str, Any]) -> dict[str, str]:
    return {name: load_template(name, fmt).render(facts) for name, fmt in CHANNELS}


def _headline(name: str, out: str) -> str:
    """The title as each channel shows it first."""
    if name == "teams_card.json.j2":
        return str(json.loads(out)["attachments"][0]["content"]["body"][0]["text"])
    if name == "slack_blocks.json.j2":
        return str(json.loads(out)["blocks"][0]["text"]["text"])
    if name == "email.html.j2":
        return out.split("<h2", 1)[1].split(">", 1)[1].split("</h2>", 1)[0]
    return out.splitlines()[0]


def test_a_success_with_a_failed_dataset_has_its_own_wording_in_every_channel() -> None:
    """With fail_policy="all" the task succeeds though Inventory failed: the headline says both, never a plain
    "refresh succeeded" above a failure, and the colour is a warning, not the success green."""
    results = [_result("Sales", RefreshStatus.COMPLETED).to_dict(),
               _result("Inventory", RefreshStatus.FAILED, error_code="ModelRefreshFailed").to_dict()]
    facts = build_facts({"ti": StubTI("success", results)}, event="success")
    assert facts["partial"] is True
    assert facts["title"] == "Power BI refresh succeeded with 1 of 2 dataset(s) failed"
    assert "the task succeeded" in facts["summary"]
    for name, out in _render(facts).items():
        assert _headline(name, out).replace("\\", "") == "Power BI refresh succeeded with 1 of 2 dataset(s) failed", name
        assert "ModelRefreshFailed" in out, name
    teams = json.loads(_render(facts)["teams_card.json.j2"])
    assert teams["attachments"][0]["content"]["body"][0]["color"] == "Warning"
    assert "#107c10" not in _render(facts)["email.html.j2"]


def test_a_plain_success_keeps_the_plain_wording() -> None:
    """Without failures the success alert keeps its title and green colour."""
    facts = build_facts({"ti": StubTI("success", [_result("Sales", RefreshStatus.COMPLETED).to_dict()])},
                        event="success")
    assert (facts["partial"], facts["title"]) == (False, "Power BI refresh succeeded")
    assert json.loads(_render(facts)["teams_card.json.j2"])["attachments"][0]["content"]["body"][0]["color"] == "Good"


class _Try(CarryOver):
    """The carry-over rules with the state a retry of the refresh task holds."""

    def __init__(self, completed: list[dict[str, Any]]) -> None:
        self.pending, self.active, self.blockers, self.probes = [], {}, {}, {}
        self.results, self.reused, self.completed, self.max_tries = [], [], completed, 1


@pytest.mark.parametrize("event", ["failure", "retry"])
def test_datasets_completed_in_an_earlier_try_fill_one_line_and_the_failure_stays_visible(event: str) -> None:
    """Nine datasets a retry skipped (completed in try 1) show as one "9 completed in an earlier try" line; the
    failed one is the only dataset listed, in every channel."""
    names = [f"Model {i}" for i in range(9)]
    completed = [{"try": 1, "result": _result(n, RefreshStatus.COMPLETED, duration_s=30.0).to_dict()} for n in names]
    retry = _Try(completed)
    targets = [Target("ws-1", "Finance", f"id-{n}", n) for n in [*names, "Stock"]]
    assert [t.dataset_name for t in retry.skip_completed(targets)] == ["Stock"]
    results = [*retry.results, _result("Stock", RefreshStatus.FAILED, error_code="ModelRefreshFailed").to_dict()]
    facts = build_facts({"ti": StubTI("failed" if event == "failure" else "up_for_retry", results, try_number=2,
                                      max_tries=2 if event == "retry" else 1)}, event=event)
    assert [d["dataset"] for d in facts["listed"]] == ["Stock"]
    assert len(facts["earlier"]) == 9
    assert facts["earlier_summary"] == "9 completed in an earlier try: Finance/Model 0, Finance/Model 1, Finance/Model 2 ..."
    assert facts["summary"].startswith("1 of 10 dataset(s) failed")
    for name, out in _render(facts).items():
        assert "9 completed in an earlier try" in out.replace("\\", ""), name
        assert "Stock" in out, name
        assert "Skipped" not in out, name
        assert "Model 5" not in out, name
