"""What people and tools read about refreshes: status lines, the refresh-log table, redaction.

What it owns: the one-line status records and the summary table (:mod:`~pbi_taskflow.observability.status_log`),
the optional refresh-log table (:mod:`~pbi_taskflow.observability.refresh_log`) and the one place secrets are
removed from text (:mod:`~pbi_taskflow.observability.redact`, which also reaches Airflow's secret masker when
Airflow is loaded).

What it may import: :mod:`pbi_taskflow.errors`, :mod:`pbi_taskflow.client` and itself at module level; no
Airflow at module level (``tests/unit/test_layers.py`` checks this). The refresh log reads its Airflow
connection inside functions, through :mod:`pbi_taskflow.airflow.compat`.
"""
