"""DAG folder integrity: import errors, cycles and team policy checks, configured in one place."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["DagIntegrityError", "DagPolicy", "assert_dag_integrity", "load_dag_bag", "policy_violations"]

_DEFAULT_OWNERS = frozenset({"", "airflow"})


class DagIntegrityError(AssertionError):
    """A DAG folder has import errors, cycles or policy violations (the message lists all of them)."""


@dataclass(frozen=True)
class DagPolicy:
    """The checks every DAG of a folder must pass.

    :param require_owner: every task has an owner other than Airflow's default ``airflow``.
    :param require_tags: every DAG has at least one tag.
    :param allowed_tags: if set, tags must come from this set.
    :param min_retries: every task has at least this many retries.
    :param require_failure_alert: every task has an ``on_failure_callback`` (for example a notifier in
        ``default_args``), or the DAG has one.
    :param dag_id_pattern: if set, a regex every DAG id must fully match.
    :param forbid_catchup: every scheduled DAG has ``catchup=False``.
    """

    require_owner: bool = True
    require_tags: bool = True
    allowed_tags: frozenset[str] | None = None
    min_retries: int = 1
    require_failure_alert: bool = True
    dag_id_pattern: str | None = None
    forbid_catchup: bool = False


def _has_callbacks(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, (list, tuple)):
        return len(value) > 0
    return True


def policy_violations(dag: Any, policy: DagPolicy) -> list[str]:
    """Every way ``dag`` breaks ``policy``, as readable messages (empty when it complies)."""
    problems: list[str] = []
    dag_id = dag.dag_id
    if policy.dag_id_pattern and not re.fullmatch(policy.dag_id_pattern, dag_id):
        problems.append(f"{dag_id}: dag_id does not match the pattern {policy.dag_id_pattern!r}")
    tags = set(dag.tags or ())
    if policy.require_tags and not tags:
        problems.append(f"{dag_id}: no tags; add tags=[...] to the DAG")
    if policy.allowed_tags is not None and tags - set(policy.allowed_tags):
        problems.append(
            f"{dag_id}: tags {sorted(tags - set(policy.allowed_tags))} are not in the allowed set "
            f"{sorted(policy.allowed_tags)}"
        )
    if policy.forbid_catchup and getattr(dag, "catchup", False) and dag.timetable.can_be_scheduled:
        problems.append(f"{dag_id}: catchup=True; set catchup=False")
    dag_alert = _has_callbacks(getattr(dag, "on_failure_callback", None))
    for task in dag.tasks:
        where = f"{dag_id}.{task.task_id}"
        if policy.require_owner and (task.owner or "").strip().lower() in _DEFAULT_OWNERS:
            problems.append(f"{where}: no owner; set default_args={{'owner': ...}}")
        retries = task.retries or 0
        if retries < policy.min_retries:
            problems.append(f"{where}: retries={retries}, expected at least {policy.min_retries}")
        if policy.require_failure_alert and not dag_alert and not _has_callbacks(task.on_failure_callback):
            problems.append(f"{where}: no on_failure_callback; wire an alert notifier in default_args")
    return problems


def load_dag_bag(dag_folder: str | os.PathLike[str]) -> Any:
    """Parse every DAG file of ``dag_folder`` (all ``.py`` files, not only those mentioning ``dag``)."""
    from pbi_taskflow.testing._compat import dag_bag_class

    folder = Path(dag_folder)
    if not folder.exists():
        msg = f"DAG folder {folder} does not exist; pass the folder holding your DAG files"
        raise FileNotFoundError(msg)
    return dag_bag_class()(dag_folder=str(folder), safe_mode=False)


def assert_dag_integrity(
    dag_folder: str | os.PathLike[str] | Any,
    *,
    policy: DagPolicy | None = None,
    expect_dag_ids: Iterable[str] | None = None,
) -> dict[str, Any]:
    """Fail with one readable message unless every DAG in ``dag_folder`` imports, is acyclic and follows ``policy``.

    :param dag_folder: a folder of DAG files, or an already loaded ``DagBag``.
    :param policy: the checks to apply; ``DagPolicy()`` when omitted, ``DagPolicy(require_owner=False,
        require_tags=False, min_retries=0, require_failure_alert=False)`` to check imports and cycles only.
    :param expect_dag_ids: DAG ids that must be present.
    :return: ``{dag_id: dag}`` of the loaded DAGs.
    :raises DagIntegrityError: listing every problem found.
    """
    from pbi_taskflow.testing._compat import check_cycle, cycle_error

    bag = load_dag_bag(dag_folder) if isinstance(dag_folder, (str, os.PathLike)) else dag_folder
    policy = policy if policy is not None else DagPolicy()
    problems = [f"import error in {path}:\n{error.strip()}" for path, error in sorted(bag.import_errors.items())]
    for dag_id, dag in sorted(bag.dags.items()):
        try:
            check_cycle(dag)
        except cycle_error() as exc:
            problems.append(f"{dag_id}: {exc}")
        problems.extend(policy_violations(dag, policy))
    missing = sorted(set(expect_dag_ids or ()) - set(bag.dags))
    if missing:
        problems.append(f"expected DAG ids not found: {missing}; found: {sorted(bag.dags)}")
    if problems:
        raise DagIntegrityError(f"{len(problems)} DAG integrity problem(s):\n- " + "\n- ".join(problems))
    return dict(bag.dags)
