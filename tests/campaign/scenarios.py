"""Random fault scenarios for the refresh task, from a seed, and their shrinking.

A :class:`Scenario` is plain data (a dict literal reproduces it): the datasets and dataflows and how their
refreshes behave, the lineage links between them (a dataset's ``reads``, a dataflow's ``upstream``), the task's
options (``upstream`` among them), the emulator faults, and the process events (crashes, restarts, kills,
clears). :func:`generate` draws one from a ``random.Random``; :func:`shrink` removes and simplifies
parts while the scenario still breaks the same invariant (greedy delta debugging over its parts).

Durations are real seconds at the emulator's time scale 1 and stand for minutes in production: a
0.3 s refresh is a 5-minute one seen through a 0.05 s poll interval instead of 1 s.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import pprint
import random
from collections.abc import Callable, Iterator
from typing import Any

OUTCOMES = [("Completed", 70), ("Failed", 10), ("Cancelled", 7), ("TimedOut", 7), ("Disabled", 6)]
EVENTS = ("crash_before_post", "crash_after_post", "crash_mid_wait", "triggerer_restart", "sigterm", "person_kill",
          "clear")
#: process events that end a try abruptly, so the task needs a retry (or a clear) to report
CRASHES = ("crash_before_post", "crash_after_post", "crash_mid_wait", "sigterm")
DEFAULT_OPTIONS: dict[str, Any] = {"deferrable": False, "wait": True, "max_concurrency": None, "timeout": None,
                                   "fail_policy": "any", "if_running": "wait", "retries": 0, "cancel_on_kill": True,
                                   "cancel_on_timeout": True, "poll": [0.05, 0.3],
                                   "upstream": "ignore", "worker_wait_under": None}
#: ``past``: the duration of a successful refresh its history holds from an hour ago (0: none), which gives the task
#: an expected duration (a deferrable task then waits in the worker first, ``worker_wait_under``)
DEFAULT_DATASET: dict[str, Any] = {"duration": 0.2, "outcome": "Completed", "enhanced": False, "history_lag": 0.0,
                                   "details_lag": 0.0, "busy": 0.0, "reads": [], "past": 0.0}
#: a dataflow: ``upstream`` names the dataflows it reads (earlier ones in the list); ``selected``: whether the task
#: names it (an unselected one is refreshed only by ``upstream='refresh'``); ``busy``: a scheduled refresh runs
DEFAULT_DATAFLOW: dict[str, Any] = {"duration": 0.2, "outcome": "Success", "busy": 0.0, "upstream": [],
                                    "selected": True}
NAMES = ["Sales", "Finance", "Stock", "Costs", "Revenue", "Payroll", "Orders", "Returns", "Budget", "Churn"]
DATAFLOW_NAMES = ["Ingest ETL", "Clean ETL", "Model ETL"]
DATAFLOW_OUTCOMES = [("Success", 75), ("Failed", 15), ("Cancelled", 10)]
#: how often a scenario has dataflows (drawn after everything else, so the dataset-only draws stay as they were)
DATAFLOW_SHARE = 0.25


@dataclasses.dataclass
class Scenario:
    """One campaign scenario (see the module docstring); ``as_dict()`` is its reproducible literal."""

    datasets: list[dict[str, Any]]
    dataflows: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    faults: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    events: list[str] = dataclasses.field(default_factory=list)
    family: str = "random"

    def option(self, name: str) -> Any:
        return self.options.get(name, DEFAULT_OPTIONS[name])

    def dataset(self, index: int) -> dict[str, Any]:
        return {**DEFAULT_DATASET, **self.datasets[index]}

    def dataflow(self, index: int) -> dict[str, Any]:
        return {**DEFAULT_DATAFLOW, **self.dataflows[index]}

    def as_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        if not self.dataflows:  # dataset-only literals stay as they were
            del data["dataflows"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scenario:
        return cls(**copy.deepcopy(data))

    def literal(self) -> str:
        return pprint.pformat(self.as_dict(), width=110, sort_dicts=False)

    def size(self) -> int:
        return len(self.datasets) + len(self.dataflows) + len(self.faults) + len(self.events) + len(self.options)


def _pick(rng: random.Random, weighted: list[tuple[Any, int]]) -> Any:
    values, weights = zip(*weighted, strict=False)
    return rng.choices(values, weights=weights)[0]


def _seconds(rng: random.Random, low: float, high: float) -> float:
    return round(rng.uniform(low, high), 2)


def _dataset(rng: random.Random, name: str) -> dict[str, Any]:
    ds: dict[str, Any] = {"name": name, "duration": _seconds(rng, 0.05, 0.6)}
    outcome = _pick(rng, OUTCOMES)
    if outcome != "Completed":
        ds["outcome"] = outcome
    if rng.random() < 0.4:
        ds["enhanced"] = True
    if rng.random() < 0.15:
        ds["history_lag"] = _seconds(rng, 0.1, 0.6)
    if ds.get("enhanced") and rng.random() < 0.15:
        ds["details_lag"] = _seconds(rng, 0.1, 0.4)
    if rng.random() < 0.1:
        ds["busy"] = _seconds(rng, 0.1, 0.5)
    if rng.random() < 0.35:
        ds["past"] = _seconds(rng, 0.05, 0.6)
    return ds


def _fault(rng: random.Random, names: list[str]) -> dict[str, Any]:
    kind = _pick(rng, [("throttle", 20), ("error5xx", 18), ("error4xx", 12), ("drop", 6), ("drop_after", 12),
                       ("slow", 8), ("race", 10), ("race_drop", 8), ("expired_token", 6)])
    if kind in ("race", "race_drop"):
        fault: dict[str, Any] = {"endpoint": "refresh_post", "fault": kind,
                                 "refresh_type": rng.choice(["Scheduled", "ViaApi", "ViaEnhancedApi", "OnDemand"]),
                                 "duration": _seconds(rng, 0.05, 0.5)}
    elif kind == "error4xx":
        fault = {"endpoint": rng.choice(["history", "details"]), "fault": "error", "status": rng.choice([401, 403]),
                 "count": rng.choice([1, 2, 2, 3])}
    else:
        endpoint = _pick(rng, [("refresh_post", 30), ("history", 25), ("details", 20), ("cancel", 5),
                               ("dataset", 5), ("datasets", 3), ("groups", 3), ("token", 3), ("*", 6)])
        if kind == "expired_token" and endpoint == "token":
            endpoint = "history"
        fault = {"endpoint": endpoint, "fault": "error" if kind == "error5xx" else kind}
        if kind == "error5xx":
            fault["status"] = rng.choice([500, 502, 503, 504])
        if kind == "throttle":
            fault["retry_after"] = _seconds(rng, 0.05, 0.3)
        if kind == "slow":
            fault["delay"] = _seconds(rng, 0.05, 0.3)
    fault.setdefault("count", rng.choice([1, 1, 1, 2, 3]))
    dataset_endpoint = fault["endpoint"] in ("refresh_post", "history", "details", "cancel", "dataset", "*")
    if dataset_endpoint and rng.random() < 0.5:
        fault["dataset"] = rng.choice(names)
    return fault


def _dataflow_fault(rng: random.Random, flows: list[str], ordered: bool) -> dict[str, Any]:
    """A fault on a dataflow endpoint: the refresh POST (lost answer, 5xx, dropped connection, a race with another
    caller's refresh), the transactions reads, the cancel, the listing and the lineage reads."""
    kind = _pick(rng, [("throttle", 22), ("error5xx", 20), ("drop", 8), ("drop_after", 14), ("slow", 5),
                       ("race", 12), ("race_drop", 10), ("error400", 3)])
    if kind in ("race", "race_drop"):
        fault: dict[str, Any] = {"endpoint": "dataflow_refresh", "fault": kind,
                                 "refresh_type": rng.choice(["Scheduled", "OnDemand", "OnDemand"]),
                                 "duration": _seconds(rng, 0.05, 0.4), "count": 1}
        if rng.random() < 0.5:
            fault["dataflow"] = rng.choice(flows)
        return fault
    if kind in ("drop_after", "error400"):
        endpoint = "dataflow_refresh"
    else:
        endpoint = _pick(rng, [("dataflow_refresh", 35), ("dataflow_transactions", 40), ("dataflow_cancel", 5),
                               ("dataflows", 8)] + ([("dataset_upstream_dataflows", 6),
                                                     ("dataflow_upstream_dataflows", 6)] if ordered else []))
    fault = {"endpoint": endpoint, "fault": "error" if kind.startswith("error") else kind}
    if kind == "error5xx":
        fault["status"] = rng.choice([500, 502, 503, 504])
    if kind == "error400":
        fault["status"] = 400
    if kind == "throttle":
        fault["retry_after"] = _seconds(rng, 0.05, 0.3)
    if kind == "slow":
        fault["delay"] = _seconds(rng, 0.05, 0.3)
    fault["count"] = rng.choice([1, 1, 1, 2, 3])
    return fault


def _add_dataflows(rng: random.Random, scenario: Scenario) -> None:
    """Give a scenario dataflows, lineage links (dataflow -> dataflow, dataflow -> dataset), maybe a lineage order
    (``upstream``), and faults on the dataflow endpoints."""
    flows = DATAFLOW_NAMES[:_pick(rng, [(1, 45), (2, 35), (3, 20)])]
    for index, name in enumerate(flows):
        df: dict[str, Any] = {"name": name, "duration": _seconds(rng, 0.05, 0.4)}
        outcome = _pick(rng, DATAFLOW_OUTCOMES)
        if outcome != "Success":
            df["outcome"] = outcome
        if index and rng.random() < 0.5:
            df["upstream"] = [rng.choice(flows[:index])]
        if rng.random() < 0.2:
            df["selected"] = False
        if rng.random() < 0.1:
            df["busy"] = _seconds(rng, 0.1, 0.4)
        scenario.dataflows.append(df)
    for ds in scenario.datasets[:3]:
        if rng.random() < 0.5:
            ds["reads"] = [rng.choice(flows)]
    upstream = _pick(rng, [("ignore", 30), ("order", 35), ("refresh", 35)])
    if upstream != "ignore":
        scenario.options["upstream"] = upstream
    for _ in range(_pick(rng, [(0, 30), (1, 45), (2, 25)])):
        scenario.faults.append(_dataflow_fault(rng, flows, upstream != "ignore"))
    if scenario.family == "random":
        scenario.family = "dataflows" if upstream == "ignore" else f"lineage_{upstream}"


def _events(rng: random.Random, options: dict[str, Any]) -> list[str]:
    deferrable = options.get("deferrable", False)
    count = _pick(rng, [(0, 55), (1, 35), (2, 10)])
    pool = ["crash_before_post", "crash_after_post", "clear", "person_kill"]
    pool += ["triggerer_restart"] if deferrable else ["crash_mid_wait", "sigterm"]
    events = rng.sample(pool, k=min(count, len(pool)))
    if "person_kill" in events:
        events = ["person_kill"]
    return events


def _focused(rng: random.Random, scenario: Scenario) -> str:
    """Turn a random scenario into one of the shapes that broke the promise before (issue 9's cases)."""
    family = rng.choice(["wait_false_concurrency", "status_403", "timeout_edge", "clear_after_crash",
                         "ambiguous_post_lag", "sigterm", "foreign_race", "crash_after_post"])
    names = [d["name"] for d in scenario.datasets]
    opts = scenario.options
    if family == "wait_false_concurrency":
        while len(scenario.datasets) < 3:
            scenario.datasets.append(_dataset(rng, NAMES[len(scenario.datasets)]))
        opts.update(wait=False, max_concurrency=rng.randint(1, len(scenario.datasets) - 1))
        scenario.events = [e for e in scenario.events if e not in ("person_kill", "sigterm", "crash_mid_wait")]
    elif family == "status_403":
        target = rng.choice(names)
        enhanced = scenario.dataset(names.index(target))["enhanced"]
        scenario.faults.append({"endpoint": "details" if enhanced else "history", "fault": "error",
                                "status": rng.choice([401, 403]), "count": 2, "dataset": target})
        opts.setdefault("retries", 1)
    elif family == "timeout_edge":
        target = scenario.datasets[0]
        target["duration"] = _seconds(rng, 0.2, 0.5)
        opts.update(timeout=round(target["duration"] + rng.uniform(0.02, 0.15), 2), retries=0,
                    poll=[0.1, rng.choice([0.3, 1.0])])
        scenario.events = []
    elif family == "clear_after_crash":
        opts.update(deferrable=False, retries=0, timeout=None)
        scenario.datasets[0]["duration"] = _seconds(rng, 0.3, 0.6)
        scenario.events = ["crash_mid_wait", "clear"]
    elif family == "ambiguous_post_lag":
        target = scenario.datasets[0]
        target.update(history_lag=_seconds(rng, 0.2, 0.6), duration=_seconds(rng, 0.05, 0.4))
        scenario.faults.append({"endpoint": "refresh_post", "fault": rng.choice(["drop_after", "error", "drop_after"]),
                                "status": 503, "count": 1, "dataset": target["name"]})
    elif family == "sigterm":
        opts.update(deferrable=False, retries=1, timeout=None, wait=True)
        for ds in scenario.datasets:
            ds["enhanced"] = True
            ds["duration"] = max(ds.get("duration", 0.2), 0.3)
        scenario.events = ["sigterm"]
    elif family == "foreign_race":
        target = scenario.datasets[0]
        scenario.faults.append({"endpoint": "refresh_post", "fault": rng.choice(["race", "race_drop"]),
                                "refresh_type": rng.choice(["ViaApi", "ViaEnhancedApi", "Scheduled"]),
                                "duration": _seconds(rng, 0.1, 0.5), "count": 1, "dataset": target["name"]})
        if rng.random() < 0.5:
            opts.update(timeout=round(rng.uniform(0.2, 0.5), 2), retries=0)
            scenario.events = []
    elif family == "crash_after_post":
        opts.update(retries=1, timeout=None)
        scenario.events = ["crash_after_post"]
    return family


def _valid(scenario: Scenario) -> Scenario:
    """Keep a scenario inside the space where the invariants are unambiguous."""
    opts = scenario.options
    names = [d["name"] for d in scenario.datasets]
    scenario.faults = [f for f in scenario.faults if f.get("dataset") in (None, *names)]
    flows: list[str] = []
    for df in scenario.dataflows:  # a dataflow reads only dataflows before it: the graph has no cycle
        if "upstream" in df:
            df["upstream"] = [u for u in df["upstream"] if u in flows]
        flows.append(df["name"])
    for ds in scenario.datasets:
        if "reads" in ds:
            ds["reads"] = [u for u in ds["reads"] if u in flows]
    scenario.faults = [f for f in scenario.faults if f.get("dataflow") in (None, *flows)]
    if not opts.get("wait", True):  # without waiting, nothing starts after what it reads
        opts.pop("upstream", None)
    if opts.get("deferrable"):
        scenario.events = [e for e in scenario.events if e not in ("crash_mid_wait", "sigterm")]
    else:
        scenario.events = [e for e in scenario.events if e != "triggerer_restart"]
    if not opts.get("wait", True):
        scenario.events = [e for e in scenario.events if e not in ("crash_mid_wait", "sigterm", "triggerer_restart",
                                                                    "person_kill")]
    if "person_kill" in scenario.events:  # a person's "mark failed" leaves no retry
        scenario.events = ["person_kill"]
        opts["retries"] = 0
    if opts.get("timeout") is not None:  # a timeout with retries would judge a retry against try 1's deadline
        scenario.events = [e for e in scenario.events if e == "person_kill"]
        opts["retries"] = 0
    if any(e in CRASHES for e in scenario.events) and "clear" not in scenario.events:
        opts["retries"] = max(1, opts.get("retries", 0))
    if opts.get("max_concurrency") is not None:
        opts["max_concurrency"] = max(1, min(opts["max_concurrency"], 10))
    return scenario


def generate(rng: random.Random) -> Scenario:
    """One random scenario."""
    count = _pick(rng, [(1, 30), (2, 25), (3, 20), (4, 8), (5, 6), (7, 5), (10, 6)])
    names = NAMES[:count]
    datasets = [_dataset(rng, name) for name in names]
    options: dict[str, Any] = {}
    if rng.random() < 0.4:
        options["deferrable"] = True
    if rng.random() < 0.12:
        options["wait"] = False
    if rng.random() < 0.35:
        options["max_concurrency"] = rng.randint(1, max(1, count))
    if rng.random() < 0.12:
        longest = max(d["duration"] for d in datasets)
        options["timeout"] = round(rng.uniform(0.5, 1.5) * longest + 0.05, 2)
    if rng.random() < 0.35:
        options["fail_policy"] = "all"
    if_running = _pick(rng, [("wait", 50), ("attach", 20), ("skip", 15), ("fail", 15)])
    if if_running != "wait":
        options["if_running"] = if_running
    if rng.random() < 0.3:
        options["retries"] = 1
    if rng.random() < 0.15:
        options["cancel_on_kill"] = False
    if rng.random() < 0.1:
        options["cancel_on_timeout"] = False
    if options.get("deferrable") and rng.random() < 0.5:  # a window some refreshes outlast: they defer after it
        options["worker_wait_under"] = _seconds(rng, 0.1, 0.5)
    scenario = Scenario(datasets=datasets, options=options,
                        faults=[_fault(rng, names) for _ in range(_pick(rng, [(0, 25), (1, 35), (2, 25), (4, 15)]))],
                        events=_events(rng, options))
    if rng.random() < 0.35:
        scenario.family = _focused(rng, scenario)
    if rng.random() < DATAFLOW_SHARE:
        _add_dataflows(rng, scenario)
    return _valid(scenario)


def scenarios(seed: int) -> Iterator[tuple[int, Scenario]]:
    """Endless scenarios from ``seed``: ``(index, scenario)``; scenario ``i`` depends only on (seed, i)."""
    for index in itertools.count():
        yield index, generate(random.Random(f"{seed}:{index}"))


# --- shrinking ---------------------------------------------------------------------------------------


def _candidates(scenario: Scenario) -> Iterator[Scenario]:
    """Simpler variants of ``scenario``, biggest cuts first."""
    data = scenario.as_dict()

    def variant(change: Callable[[dict[str, Any]], None]) -> Scenario:
        copied = copy.deepcopy(data)
        change(copied)
        return _valid(Scenario.from_dict(copied))

    for index in range(len(scenario.events)):
        yield variant(lambda d, i=index: d["events"].pop(i))
    for index in range(len(scenario.faults)):
        yield variant(lambda d, i=index: d["faults"].pop(i))
    if len(scenario.datasets) > 1:
        half = len(scenario.datasets) // 2
        for keep in (scenario.datasets[:half], scenario.datasets[half:]):
            yield variant(lambda d, k=keep: d.update(datasets=copy.deepcopy(k)))
        for index in range(len(scenario.datasets)):
            yield variant(lambda d, i=index: d["datasets"].pop(i))
    for index in range(len(scenario.dataflows)):
        yield variant(lambda d, i=index: d["dataflows"].pop(i))
    for name in list(scenario.options):
        yield variant(lambda d, n=name: d["options"].pop(n))
    for index, df in enumerate(scenario.dataflows):
        for key in ("busy", "upstream", "selected", "outcome"):
            if key in df:
                yield variant(lambda d, i=index, k=key: d["dataflows"][i].pop(k))
    for index, ds in enumerate(scenario.datasets):
        for key in ("busy", "reads", "history_lag", "details_lag", "enhanced", "outcome", "past"):
            if key in ds:
                yield variant(lambda d, i=index, k=key: d["datasets"][i].pop(k))
    for index, fault in enumerate(scenario.faults):
        if fault.get("count", 1) > 1:
            yield variant(lambda d, i=index: d["faults"][i].update(count=1))
        for key in ("dataset", "dataflow"):
            if key in fault:
                yield variant(lambda d, i=index, k=key: d["faults"][i].pop(k))


def shrink(scenario: Scenario, still_fails: Callable[[Scenario], bool], budget: int = 40) -> Scenario:
    """The smallest variant of ``scenario`` found (within ``budget`` runs) for which ``still_fails`` holds."""
    current = scenario
    runs = 0
    progress = True
    while progress and runs < budget:
        progress = False
        for candidate in _candidates(current):
            if candidate.as_dict() == current.as_dict() or not candidate.datasets:
                continue
            runs += 1
            if still_fails(candidate):
                current, progress = candidate, True
                break
            if runs >= budget:
                break
    return current
