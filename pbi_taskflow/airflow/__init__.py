"""The Airflow layer: the decorator, operator, trigger, hook and everything that talks to Airflow.

What it owns: ``@powerbi_refresh`` (:mod:`~pbi_taskflow.airflow.decorator`) and its operator
(:mod:`~pbi_taskflow.airflow.operator`), the deferred wait (:mod:`~pbi_taskflow.airflow.trigger`), the hook and
the connection form (:mod:`~pbi_taskflow.airflow.hook`, :mod:`~pbi_taskflow.airflow.connection`,
:mod:`~pbi_taskflow.airflow.provider_info`), extra links, assets and OpenLineage
(:mod:`~pbi_taskflow.airflow.links`, :mod:`~pbi_taskflow.airflow.lineage`), the refresh handles kept across tries
(:mod:`~pbi_taskflow.airflow.ledger`), shutdown versus a person's kill (:mod:`~pbi_taskflow.airflow.stopping`), the
task's verdict and report (:mod:`~pbi_taskflow.airflow.report`, :mod:`~pbi_taskflow.airflow.failfast`,
:mod:`~pbi_taskflow.airflow.error_event`), context helpers (:mod:`~pbi_taskflow.airflow.context`), the
``[pbi_taskflow]`` options (:mod:`~pbi_taskflow.airflow.config`) and every difference between Airflow 3 releases
(:mod:`~pbi_taskflow.airflow.compat`).

What it may import: everything but the command line, the emulator and the test kit. Airflow is imported
inside functions wherever a DAG file would otherwise pay for it at parse time.
"""
