"""``[core] hostname_callable`` of the drill deployment: each component reports the name the harness gave it.

Both Celery workers and both triggerers run on one machine; Airflow records the host that ran each try and
holds each trigger under this name, so the drills can tell which worker or triggerer did what.
"""

from __future__ import annotations

import os
import socket


def hostname() -> str:
    return os.environ.get("PBI_E2E_COMPONENT") or socket.getfqdn()
