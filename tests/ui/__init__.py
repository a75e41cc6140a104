"""Browser tests of pbi_taskflow in Airflow's UI."""
