"""The refresh engine: which refreshes to start, how to wait for them and what to report; no Airflow.

What it owns: the return value read as a selection (:mod:`~pbi_taskflow.engine.selection`) and as
targets (:mod:`~pbi_taskflow.engine.targets`); the task's policies (:mod:`~pbi_taskflow.engine.policy`);
one run of refreshes from planning to results (:mod:`~pbi_taskflow.engine.run`); the status-call schedule
shared by the worker, the trigger and the command line (:mod:`~pbi_taskflow.engine.schedule`); the wait in
a worker (:mod:`~pbi_taskflow.engine.waiter`); a request whose answer was lost
(:mod:`~pbi_taskflow.engine.probe`) and what carries from one try to the next (:mod:`~pbi_taskflow.engine.tries`).

What it may import: :mod:`pbi_taskflow.errors`, :mod:`pbi_taskflow.client`, :mod:`pbi_taskflow.observability`
and itself; never Airflow (``tests/unit/test_layers.py`` checks this), so its rules are tested without a DAG.
"""
