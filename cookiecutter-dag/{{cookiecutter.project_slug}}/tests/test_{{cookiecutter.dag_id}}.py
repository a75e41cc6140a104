{%- set chain = cookiecutter.upstream_dataflows.strip() != "" -%}
"""Tests of the {{ cookiecutter.dag_id }} DAG: they run the real DAG on Airflow against a local Power BI emulator."""

from __future__ import annotations

DAG_ID = {{ cookiecutter.dag_id | tojson }}


def test_dag_integrity(dag_bag):
    """Every DAG in dags/ imports, has no cycles and follows the policy in conftest.dag_policy."""
    assert DAG_ID in dag_bag
    assert list(dag_bag[DAG_ID].task_dict) == ["extract", "transform", "refresh"]


def test_refresh_succeeds(dag_bag, run_dag, powerbi, dataset_names):
    """A normal run refreshes every configured dataset and returns one Completed result per dataset."""
    result = run_dag(dag_bag[DAG_ID])
    assert result.state == "success", result.logs()
    outcomes = {r["dataset_name"]: r["status"] for r in result.xcom("refresh"){% if chain %} if r["kind"] != "dataflow"{% endif %}}
    assert outcomes == {name: "Completed" for name in dataset_names}


def test_failed_refresh_fails_the_task{% if cookiecutter.alert_channel != "none" %}_and_sends_an_alert{% endif %}(dag_bag, run_dag, powerbi, dataset_names{% if cookiecutter.alert_channel != "none" %}, alert_inbox{% endif %}):
    """When Power BI reports a failed refresh the task fails{% if cookiecutter.alert_channel != "none" %} and the alert names the dataset and error{% endif %}."""
    failing = dataset_names[0]
    powerbi.set_refresh(failing, outcome="Failed", error_code="ModelRefresh_ShortMessage_ProcessingError",
                        error_message="The source table is locked")
    dag = dag_bag[DAG_ID]
    dag.get_task("refresh").retries = 0  # make the first failure final, as after the last retry
    result = run_dag(dag)
    assert result.state == "failed"
    assert result.task_states["refresh"] == "failed"
    assert "ModelRefresh_ShortMessage_ProcessingError" in result.logs("refresh")
{%- if cookiecutter.alert_channel != "none" %}
    alerts = alert_inbox(1)
    assert len(alerts) == 1
    assert failing in alerts[0]
    assert "ModelRefresh_ShortMessage_ProcessingError" in alerts[0]
{%- endif %}


def test_throttled_refresh_still_succeeds(dag_bag, run_dag, powerbi, dataset_names, clean_env):
    """A 429 with Retry-After from Power BI is waited out and retried: the run still succeeds."""
    powerbi.inject("refresh_post", "throttle", retry_after=1)
    result = run_dag(dag_bag[DAG_ID])
    assert result.state == "success", result.logs("refresh")
    assert powerbi.count("refresh_post") == len(dataset_names) + 1
{%- if chain %}


def test_datasets_refresh_after_the_dataflows_they_read(dag_bag, run_dag, powerbi, dataset_names, dataflow_names):
    """upstream="refresh": the upstream dataflows refresh first (depth 0), and each dataset's refresh is requested
    only after every dataflow it reads ended (depth 1)."""
    result = run_dag(dag_bag[DAG_ID])
    assert result.state == "success", result.logs("refresh")
    depths = {(r["kind"] == "dataflow", r["dataset_name"]): (r["status"], r["depth"]) for r in result.xcom("refresh")}
    assert depths == {**{(True, name): ("Completed", 0) for name in dataflow_names},
                      **{(False, name): ("Completed", 1) for name in dataset_names}}
    ended = [t.end for name in dataflow_names for t in powerbi.dataflow(name).transactions]
    assert len(ended) == len(dataflow_names)  # one refresh (transaction) of each dataflow
    posts = [r for r in powerbi.requests if r.endpoint == "refresh_post" and r.status == 202]
    assert len(posts) == len(dataset_names)
    assert all(post.time >= max(ended) for post in posts), (ended, [post.time for post in posts])
    assert "DEPTH" in result.logs("refresh")  # the summary table lists the items by depth


def test_a_failed_dataflow_skips_the_datasets_that_read_it(
    dag_bag, run_dag, powerbi, dataset_names, dataflow_names{% if cookiecutter.alert_channel != "none" %}, alert_inbox{% endif %}
):
    """When an upstream dataflow fails, the datasets reading it are not refreshed (Skipped, naming it) and the
    task fails{% if cookiecutter.alert_channel != "none" %}; the alert names the dataflow{% endif %}."""
    failing = dataflow_names[0]
    powerbi.set_dataflow_refresh(failing, outcome="Failed")
    dag = dag_bag[DAG_ID]
    dag.get_task("refresh").retries = 0
    result = run_dag(dag)
    assert result.state == "failed"
    assert powerbi.count("refresh_post") == 0  # no dataset refresh was requested
    datasets = [r for r in result.xcom("refresh") if r["kind"] != "dataflow"]
    assert {r["dataset_name"]: r["status"] for r in datasets} == {name: "Skipped" for name in dataset_names}
    assert all(failing in r["reason"] for r in datasets), [r["reason"] for r in datasets]
{%- if cookiecutter.alert_channel != "none" %}
    assert failing in alert_inbox(1)[0]
{%- endif %}
{%- endif %}

