"""The ``pbi-taskflow`` command: ``doctor``, ``demo``, ``new`` (the DAG scaffold), ``refresh`` and the emulator.

:mod:`~pbi_taskflow.cli.main` parses the command line; :mod:`~pbi_taskflow.cli.doctor`,
:mod:`~pbi_taskflow.cli.demo` and :mod:`~pbi_taskflow.cli.scaffold` hold the commands. It may import every layer.
"""
