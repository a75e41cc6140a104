"""How a refresh task starts, waits for and judges its refreshes: :class:`RefreshPolicy`.

Light on purpose: the operator validates its arguments with it when a DAG file is parsed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pbi_taskflow.client.durations import APPEARANCE_GRACE, to_seconds
from pbi_taskflow.errors import ConfigurationError

if TYPE_CHECKING:
    from pbi_taskflow.engine.schedule import PollSchedule

IF_RUNNING = ("wait", "attach", "skip", "fail")
ON_EMPTY = ("skip", "succeed", "fail")
FAIL_POLICIES = ("any", "all")


def _choice(value: Any, name: str, allowed: tuple[str, ...]) -> str:
    if isinstance(value, str) and value.strip().lower() in allowed:
        return value.strip().lower()
    msg = f"Invalid {name} {value!r}: expected one of {', '.join(repr(a) for a in allowed)}."
    raise ConfigurationError(msg)


@dataclasses.dataclass(frozen=True)
class RefreshPolicy:
    """How a task starts, waits for and judges its refreshes. Validated on construction.

    :param if_running: when the dataset is already refreshing: ``wait`` for it then refresh,
        ``attach`` to it, ``skip`` the dataset, or ``fail`` it.
    :param min_interval: skip a dataset refreshed successfully less than this long ago (seconds).
    :param on_empty: when nothing is selected: ``skip`` the task, ``succeed``, or ``fail``.
    :param fail_policy: fail the task when ``any`` dataset fails, or only when ``all`` do.
    :param max_concurrency: refreshes running at the same time.
    :param poll_min: shortest delay between two status calls of a refresh (seconds).
    :param poll_max: longest delay between two status calls of a refresh (seconds).
    :param timeout: how long to wait for the refreshes (seconds), None for no limit.
    :param cancel_on_kill: cancel the refreshes this task started when it is killed.
    :param cancel_on_timeout: cancel them when ``timeout`` or the task's execution timeout passes.
    :param appearance_grace: how long a refresh may stay missing from the history after its request
        (a standard refresh Power BI dropped, or a request whose answer was lost) before it counts as
        never started (seconds).
    """

    if_running: str = "wait"
    min_interval: float | None = None
    on_empty: str = "skip"
    fail_policy: str = "any"
    max_concurrency: int = 8
    poll_min: float = 1.0
    poll_max: float = 600.0
    timeout: float | None = 6 * 3600.0
    cancel_on_kill: bool = True
    cancel_on_timeout: bool = True
    appearance_grace: float = APPEARANCE_GRACE

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "if_running", _choice(self.if_running, "if_running", IF_RUNNING))
        set_(self, "on_empty", _choice(self.on_empty, "on_empty", ON_EMPTY))
        set_(self, "fail_policy", _choice(self.fail_policy, "fail_policy", FAIL_POLICIES))
        set_(self, "min_interval", to_seconds(self.min_interval, "min_interval"))
        set_(self, "timeout", to_seconds(self.timeout, "timeout"))
        set_(self, "poll_min", to_seconds(self.poll_min, "poll_interval", allow_none=False))
        set_(self, "poll_max", to_seconds(self.poll_max, "max_poll_interval", allow_none=False))
        set_(self, "appearance_grace", to_seconds(self.appearance_grace, "appearance_grace", allow_none=False))
        if self.poll_max < self.poll_min:
            msg = f"Invalid max_poll_interval {self.poll_max}: it must be >= poll_interval ({self.poll_min})."
            raise ConfigurationError(msg)
        mc = self.max_concurrency
        if isinstance(mc, bool) or not isinstance(mc, int) or mc < 1:
            msg = f"Invalid max_concurrency {mc!r}: expected a whole number >= 1."
            raise ConfigurationError(msg)
        for name in ("cancel_on_kill", "cancel_on_timeout"):
            if not isinstance(getattr(self, name), bool):
                msg = f"Invalid {name} {getattr(self, name)!r}: expected True or False."
                raise ConfigurationError(msg)

    def schedule(self, expected: float | None, *, gating: bool = False) -> PollSchedule:
        """The poll schedule of one refresh; ``gating``: other refreshes of the task wait for it to end."""
        from pbi_taskflow.engine.schedule import GATING_RAMP, RAMP, PollSchedule

        return PollSchedule(min_interval=self.poll_min, max_interval=self.poll_max, expected=expected,
                            appearance_grace=self.appearance_grace, ramp=GATING_RAMP if gating else RAMP)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RefreshPolicy:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


__all__ = ["FAIL_POLICIES", "IF_RUNNING", "ON_EMPTY", "RefreshPolicy"]
