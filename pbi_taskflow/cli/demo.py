"""``pbi-taskflow demo`` (``make demo``): the whole product in about a minute, offline.

1. start the HTTPS Power BI + Entra ID emulator and a loopback Teams webhook; one dataset reads a dataflow;
2. scaffold a DAG project from the bundled template into a temporary folder (its refresh task uses
   ``upstream="refresh"``, so the dataflow refreshes first);
3. run the DAG on an embedded SQLite Airflow (temporary ``AIRFLOW_HOME``) and show its progress;
4. print the results by lineage depth and check the chain ran in order (the dataflow's refresh ended before
   its dataset's refresh was requested);
5. run it again with one dataset failing and show the alert the webhook received;
6. clean up.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["run_demo"]

WORKSPACE = "Finance"
DATASETS = {"Sales": 3.0, "Inventory": 2.0, "Marketing": 4.0}  # name -> emulated refresh duration (s)
FAILING = "Inventory"
#: the dataflow -> dataset chain: DATAFLOW (emulated refresh duration DATAFLOW_DURATION s) feeds CHAINED
DATAFLOW = "Sales ETL"
DATAFLOW_DURATION = 2.0
CHAINED = "Sales"
DAG_ID = "demo_sales_refresh"
ALERT_CONN = "teams_alerts"


@contextlib.contextmanager
def _quiet_fds() -> Iterator[IO[str]]:
    """Silence file descriptors 1 and 2 (Airflow's own console logging); yield a stream to the real terminal."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved_out, saved_err = os.dup(1), os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    stream = os.fdopen(os.dup(saved_out), "w", buffering=1, encoding="utf-8", errors="replace")
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        yield stream
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved_out, 1)
        os.dup2(saved_err, 2)
        for fd in (saved_out, saved_err, devnull):
            os.close(fd)
        stream.close()


def escape(text: str) -> str:
    """Escape rich markup in ``text``."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)


class _Progress:
    """Turns captured log lines into a short live progress display."""

    def __init__(self, console: Any) -> None:
        self.console = console
        self.started = time.monotonic()

    def __call__(self, line: Any) -> None:
        elapsed = f"[dim]{time.monotonic() - self.started:5.1f}s[/dim]"
        message = line.message.splitlines()[0] if line.message else ""
        if message.startswith("[DAG TEST] starting task_id="):
            self.console.print(f"{elapsed}  [bold]{line.task_id}[/bold] started")
        elif message.startswith("[DAG TEST] end task"):
            self.console.print(f"{elapsed}  [bold]{line.task_id}[/bold] finished")
        elif "pbi_taskflow" in line.logger and line.level in ("info", "warning", "error"):
            if "\n" in line.message:  # the summary table: shown separately, as a table
                return
            style = {"warning": "yellow", "error": "red"}.get(line.level, "cyan")
            self.console.print(f"{elapsed}    [{style}]{escape(_compact(message))}[/{style}]", highlight=False)


def _compact(message: str) -> str:
    """A status line's key facts (``dataset: status (seen N s after the start)``); other lines unchanged.

    The elapsed time is when the task saw the state, not the refresh's duration (the results table has that).
    """
    from pbi_taskflow.observability.status_log import display_status, parse_fields

    if "refresh state:" not in message:
        return message
    fields = parse_fields(message)
    extra = f", throttled {fields['throttled_s']} s" if fields.get("throttled_s") else ""
    return (f"{fields.get('dataset') or '?'}: {display_status(fields.get('status') or '?')} "
            f"(seen {fields.get('elapsed_s') or '?'} s after the start{extra})")


def _results_table(results: list[dict[str, Any]]) -> Any:
    """The task's results; after a lineage-ordered refresh, by depth (upstream dataflows first) with a depth column."""
    from rich.table import Table

    from pbi_taskflow.observability.status_log import display_status

    ordered = any(r.get("depth") is not None for r in results)
    if ordered:
        results = sorted(results, key=lambda r: -1 if r.get("depth") is None else r["depth"])
    table = Table(title="Results by lineage depth" if ordered else "Per-dataset results")
    for column in (("depth",) if ordered else ()) + ("workspace", "item", "status", "duration", "refresh id", "error"):
        table.add_column(column)
    for r in results:
        status = display_status(str(r.get("status")))
        colour = "green" if status == "Completed" else "red"
        duration = r.get("duration_s")
        name = str(r.get("dataset_name")) + (" (dataflow)" if r.get("kind") == "dataflow" else "")
        depth = [str(r["depth"]) if r.get("depth") is not None else "-"] if ordered else []
        table.add_row(*depth, str(r.get("workspace_name")), name, f"[{colour}]{status}[/{colour}]",
                      f"{duration:.1f} s" if isinstance(duration, (int, float)) else "-",
                      str(r.get("refresh_id") or "-"), str(r.get("error_code") or ""))
    return table


def chain_order(emu: Any, results: list[dict[str, Any]], dataflow: str = DATAFLOW,
                dataset: str = CHAINED) -> tuple[bool, str]:
    """Whether the dataflow's refresh ended before the refresh of the dataset reading it was requested, and a line
    saying when each happened (emulated time, ISO 8601), from the emulator's dataflow transactions and request log.
    """
    transactions = emu.dataflow(dataflow).transactions
    [dataset_id] = [r["dataset_id"] for r in results if r.get("kind") != "dataflow" and r.get("dataset_name") == dataset]
    posts = [r.time for r in emu.requests
             if r.endpoint == "refresh_post" and r.status == 202 and dataset_id.lower() in r.path.lower()]
    if len(transactions) != 1 or len(posts) != 1:
        return False, (f"expected one refresh of dataflow {dataflow!r} and one refresh request of dataset "
                       f"{dataset!r}, found {len(transactions)} and {len(posts)}")
    ended, posted = transactions[0].end, posts[0]
    when = f"dataflow {dataflow!r} ended {ended.isoformat()}, {dataset!r} requested {posted.isoformat()}"
    return ended <= posted, when


def _show_errors(console: Any, result: Any) -> None:
    """The error lines of the failed tasks (the first line of each, without tracebacks)."""
    for task_id, state in result.task_states.items():
        if state == "failed":
            errors = [line for line in result.logs(task_id).splitlines() if line.startswith("ERROR")]
            for line in errors[-3:]:
                console.print(f"   [red]{task_id}: {line}[/red]", highlight=False)


_MD_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")


def _rendered(text: str) -> str:
    """``text`` as Teams shows it: Markdown backslash escapes (CommonMark, ASCII punctuation) removed."""
    return _MD_ESCAPE.sub(r"\1", text)


def _card_texts(node: Any) -> list[str]:
    """The visible texts of an Adaptive Card (or any JSON payload), in order."""
    if isinstance(node, dict):
        texts = [str(node["text"])] if isinstance(node.get("text"), str) else []
        if isinstance(node.get("title"), str) and isinstance(node.get("value"), str):
            texts.append(f"{node['title']}: {node['value']}")
        for key, value in node.items():
            if key not in ("text", "title", "value"):
                texts.extend(_card_texts(value))
        return texts
    if isinstance(node, list):
        return [t for item in node for t in _card_texts(item)]
    return []


#: How many texts of the alert the demo shows.
ALERT_EXCERPT = 14


def _alert_excerpt(texts: list[str], limit: int = ALERT_EXCERPT) -> list[str]:
    """The first ``limit`` texts of the alert, as Teams shows them, and a line saying how many were left out."""
    shown = [_rendered(text) for text in texts[:limit]]
    if len(texts) > limit:
        shown.append(f"... ({len(texts) - limit} more line(s) of the alert not shown here)")
    return shown


def _prepare_env(home: Path) -> None:
    from pbi_taskflow.testing.env import configure_airflow_env

    configure_airflow_env(home)
    os.environ["AIRFLOW__LOGGING__COLORED_CONSOLE_LOG"] = "False"


def run_demo(*, keep: bool = False) -> int:
    """Run the demo; return the exit code (0 when every step behaved as shown)."""
    from rich.console import Console
    from rich.panel import Panel

    console = Console()
    if "airflow" in sys.modules:  # pragma: no cover - the CLI never imports it first
        console.print("[red]The demo must start before Airflow is imported.[/red]")
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="pbi-taskflow-demo-"))
    _prepare_env(workdir / "airflow-home")
    console.print(Panel.fit("pbi_taskflow demo: Airflow 3 -> Power BI, offline", style="bold"))
    try:
        return _run(console, workdir)
    except Exception as exc:  # noqa: BLE001 - show what broke, then clean up
        console.print(f"[red]The demo failed: {type(exc).__name__}: {exc}[/red]")
        return 1
    finally:
        if keep:
            console.print(f"Kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def _run(console: Any, workdir: Path) -> int:
    from pbi_taskflow.cli.scaffold import generate
    from pbi_taskflow.emulator import Emulator
    from pbi_taskflow.testing.certs import CA_ENV_VARS, combined_ca_bundle
    from pbi_taskflow.testing.receivers import WebhookReceiver

    with Emulator(port=0) as emu, WebhookReceiver() as webhook:
        console.print(f"1. Emulator of Power BI and Entra ID on {emu.url}; Teams webhook stand-in on {webhook.url}")
        emu.add_workspace(WORKSPACE)
        emu.add_dataflow(WORKSPACE, DATAFLOW, duration=DATAFLOW_DURATION)
        for name, duration in DATASETS.items():
            emu.add_dataset(WORKSPACE, name, duration=duration)
        emu.link_dataset(WORKSPACE, CHAINED, [DATAFLOW])
        console.print(f"   workspace {WORKSPACE!r} with datasets {', '.join(DATASETS)}; "
                      f"{CHAINED!r} reads dataflow {DATAFLOW!r}")

        project = generate(
            workdir,
            no_input=True,
            answers={
                "project_name": "Demo Sales",
                "project_slug": "demo_sales",
                "dag_id": DAG_ID,
                "owner": "bi-team",
                "schedule": "@daily",
                "workspace": WORKSPACE,
                "datasets": ", ".join(DATASETS),
                "upstream_dataflows": DATAFLOW,
                "alert_channel": "teams",
                "alert_target": ALERT_CONN,
            },
        )
        console.print(f"2. Scaffolded {project.name}/ from the template: "
                      + ", ".join(str(p.relative_to(project)) for p in sorted(project.rglob("*.py"))))

        os.environ["AIRFLOW_CONN_POWERBI_DEFAULT"] = emu.airflow_conn_json()
        os.environ[f"AIRFLOW_CONN_{ALERT_CONN.upper()}"] = webhook.airflow_conn_json()
        bundle = combined_ca_bundle(emu.ca_bundle, workdir / "ca-bundle.pem")
        for name in CA_ENV_VARS:
            if os.environ.get(name):
                os.environ[name] = str(bundle)
        os.environ["NO_PROXY"] = ",".join(x for x in (os.environ.get("NO_PROXY"), "127.0.0.1", "localhost") if x)

        with _quiet_fds() as terminal:
            from rich.console import Console

            live = Console(file=terminal, force_terminal=console.is_terminal, width=console.width)
            return _airflow_part(live, project, emu, webhook)


def _airflow_part(console: Any, project: Path, emu: Any, webhook: Any) -> int:
    from pbi_taskflow.testing.env import migrate_db
    from pbi_taskflow.testing.integrity import load_dag_bag
    from pbi_taskflow.testing.runner import run_dag

    console.print("3. Preparing an embedded Airflow (SQLite metadata DB in a temporary AIRFLOW_HOME) ...")
    migrate_db()
    bag = load_dag_bag(project / "dags")
    if bag.import_errors:
        console.print(f"[red]The scaffolded DAG does not import: {bag.import_errors}[/red]")
        return 1
    dag = bag.dags[DAG_ID]
    console.print(f"   Running DAG {DAG_ID!r} (extract -> transform -> refresh, upstream=\"refresh\": dataflow "
                  f"{DATAFLOW!r} first, then {CHAINED!r}); the first task also waits for Airflow's one-time start-up "
                  "(a few seconds) ...")
    result = run_dag(dag, on_log=_Progress(console))
    console.print(f"   DAG run {result.state}")
    if result.state != "success":
        _show_errors(console, result)
    results = result.xcom("refresh") or []
    console.print(_results_table(results))
    ok = result.state == "success" and all(r.get("status") == "Completed" for r in results)
    if ok:
        ok, when = chain_order(emu, results)
        colour = "green" if ok else "red"
        console.print(f"   [{colour}]Chain order {'checked' if ok else 'NOT respected'}: {escape(when)}[/{colour}]",
                      highlight=False)

    console.print(f"\n4. Failing variant: Power BI now fails the refresh of {FAILING!r} "
                  "(task retries turned off for the demo, so the first failure is final) ...")
    emu.set_refresh(FAILING, outcome="Failed", error_code="ModelRefresh_ShortMessage_ProcessingError",
                    error_message="The source table 'stock' is locked by another process.")
    dag.get_task("refresh").retries = 0
    failed = run_dag(dag, on_log=_Progress(console))
    console.print(f"   DAG run {failed.state}; task states: {failed.task_states}")
    delivered = webhook.wait_for(1, timeout=15)
    if delivered:
        card = webhook.delivered[0].json
        texts = _card_texts(card)
        cut = f"; the first {ALERT_EXCERPT} of {len(texts)}" if len(texts) > ALERT_EXCERPT else ""
        console.print(f"5. Alert delivered to the Teams webhook stand-in (its texts as Teams shows them{cut}):")
        for text in _alert_excerpt(texts):
            console.print(f"   | {text}", highlight=False, markup=False)
    else:
        console.print("[red]5. No alert arrived at the webhook.[/red]")
    ok = ok and failed.state == "failed" and delivered
    console.print("\n[bold green]Demo finished.[/bold green]" if ok else "\n[bold red]Demo finished with problems.[/bold red]")
    console.print("Next: `pbi-taskflow new` to scaffold your own DAG; README.md has the user guide.")
    return 0 if ok else 1
