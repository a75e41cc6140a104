"""assert_dag_integrity and DagPolicy: import errors, cycles and policy checks in one readable failure."""

from __future__ import annotations

import textwrap

import pytest

from pbi_taskflow.testing import DagIntegrityError, DagPolicy, assert_dag_integrity

GOOD = '''
from datetime import timedelta
from airflow.sdk import dag, task

def alert(context):
    pass

@dag(schedule=None, tags=["finance"], default_args={"owner": "data-team", "retries": 2,
     "retry_delay": timedelta(seconds=1), "on_failure_callback": [alert]})
def good():
    @task
    def one():
        return 1
    one()

good()
'''

SLOPPY = '''
from airflow.sdk import dag, task

@dag(schedule=None)
def sloppy():
    @task
    def one():
        return 1
    one()

sloppy()
'''

BROKEN = "import module_that_does_not_exist\n"


def _folder(tmp_path, **files):
    for name, text in files.items():
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(text))
    return tmp_path


def test_compliant_folder_passes_and_returns_its_dags(airflow_home, tmp_path):
    """A folder whose DAGs import cleanly and follow the default policy returns {dag_id: dag}."""
    dags = assert_dag_integrity(_folder(tmp_path, good=GOOD), expect_dag_ids=["good"])
    assert list(dags) == ["good"]


def test_policy_violations_are_listed_together(airflow_home, tmp_path):
    """Missing owner, tags, retries and alert callback are all reported in one failure."""
    with pytest.raises(DagIntegrityError) as info:
        assert_dag_integrity(_folder(tmp_path, sloppy=SLOPPY))
    message = str(info.value)
    assert "sloppy: no tags" in message
    assert "sloppy.one: no owner" in message
    assert "sloppy.one: retries=0, expected at least 1" in message
    assert "sloppy.one: no on_failure_callback" in message


def test_relaxed_policy_accepts_the_same_folder(airflow_home, tmp_path):
    """Policy checks are data: switching them off lets the same DAG pass."""
    relaxed = DagPolicy(require_owner=False, require_tags=False, min_retries=0, require_failure_alert=False)
    assert list(assert_dag_integrity(_folder(tmp_path, sloppy=SLOPPY), policy=relaxed)) == ["sloppy"]


def test_import_errors_fail_with_the_file_and_error(airflow_home, tmp_path):
    """A DAG file that does not import is reported with its path and the import error."""
    with pytest.raises(DagIntegrityError, match=r"broken\.py[\s\S]*module_that_does_not_exist"):
        assert_dag_integrity(_folder(tmp_path, good=GOOD, broken=BROKEN))


def test_allowed_tags_and_dag_id_pattern(airflow_home, tmp_path):
    """Tags outside the allowed set and dag ids not matching the pattern are violations."""
    policy = DagPolicy(allowed_tags=frozenset({"sales"}), dag_id_pattern=r"team_[a-z_]+")
    with pytest.raises(DagIntegrityError) as info:
        assert_dag_integrity(_folder(tmp_path, good=GOOD), policy=policy)
    assert "tags ['finance'] are not in the allowed set ['sales']" in str(info.value)
    assert "does not match the pattern" in str(info.value)


def test_missing_expected_dag_and_missing_folder(airflow_home, tmp_path):
    """An expected dag id that is absent fails; a folder that does not exist fails with its path."""
    with pytest.raises(DagIntegrityError, match="expected DAG ids not found: \\['other'\\]"):
        assert_dag_integrity(_folder(tmp_path, good=GOOD), expect_dag_ids=["other"])
    with pytest.raises(FileNotFoundError, match="nowhere"):
        assert_dag_integrity(tmp_path / "nowhere")
