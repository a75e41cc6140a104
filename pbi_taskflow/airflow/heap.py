"""Keep the triggerer's start-up heap out of garbage collection, so a full collection does not stall its loop.

A full (generation 2) collection walks every tracked object of the process: in a triggerer that is
mostly what Airflow imported and configured at start-up, hundreds of thousands of objects that live as
long as the process. Walking them takes about 0.1 s, during which the event loop, and so every trigger
in it, stands still. :func:`freeze_once` moves the objects alive when the first refresh trigger starts
into the permanent generation (:func:`gc.freeze`, what Airflow's DAG processor does too), so later full
collections only walk what was allocated since. Objects created afterwards are collected as usual.

``[pbi_taskflow] triggerer_gc_freeze = False`` turns it off.
"""

from __future__ import annotations

import gc
import logging
import threading

log = logging.getLogger(__name__)

_lock = threading.Lock()
_done = False


def freeze_once() -> int:
    """Freeze the current heap the first time it is called in this process (if enabled); return the count."""
    global _done
    with _lock:
        if _done:
            return 0
        _done = True
    from pbi_taskflow.airflow.config import airflow_conf

    # Airflow's own boolean parsing: a value it does not know is an error naming the option
    if not airflow_conf().getboolean("pbi_taskflow", "triggerer_gc_freeze", fallback=True):
        return 0
    gc.freeze()
    frozen = gc.get_freeze_count()
    log.info(
        "Kept the %d objects alive at the first Power BI trigger out of garbage collection, so full collections "
        "do not stall the triggerer's event loop ([pbi_taskflow] triggerer_gc_freeze).",
        frozen,
    )
    return frozen


def reset() -> None:
    """Forget that the heap was frozen and unfreeze it (for tests)."""
    global _done
    with _lock:
        _done = False
    gc.unfreeze()


__all__ = ["freeze_once", "reset"]
