"""The ``pbi-taskflow`` command: ``new``, ``emulator``, ``doctor``, ``refresh`` and ``demo``.

Start-up stays light: each command imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pbi_taskflow.client.models import Handle, RefreshState
    from pbi_taskflow.client.sync import PowerBIClient

__all__ = ["build_parser", "main"]

#: Exit codes.
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _version() -> str:
    from pbi_taskflow import __version__

    return __version__


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``pbi-taskflow``."""
    parser = argparse.ArgumentParser(
        prog="pbi-taskflow",
        description="Refresh Power BI semantic models from Airflow: scaffold, check, refresh and demo.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    new = commands.add_parser(
        "new", help="generate a DAG project from the bundled template",
        description="Generate a DAG project (DAG, workspace config, tests, .env.example) from the bundled "
        "cookiecutter template. Answers not given are prompted for, unless --no-input.",
    )
    new.add_argument("answers", nargs="*", metavar="KEY=VALUE", help="answers, e.g. dag_id=sales_refresh owner=bi-team")
    new.add_argument("--no-input", action="store_true", help="do not prompt; use the answers given and the defaults")
    new.add_argument("--config-file", metavar="FILE",
                     help="YAML/JSON file of answers (flat, under default_context, or a .cookiecutter.json)")
    new.add_argument("--output-dir", "-o", default=".", metavar="DIR", help="where to create the project (default: .)")
    new.add_argument("--overwrite", action="store_true", help="write into an existing project folder")

    emulator = commands.add_parser(
        "emulator", help="run the local HTTPS Power BI + Entra ID emulator", add_help=False,
        description="Run the emulator (all options are passed on; see `pbi-taskflow emulator --help`).",
    )
    emulator.add_argument("args", nargs=argparse.REMAINDER)

    doctor = commands.add_parser(
        "doctor", help="check a connection end to end",
        description="Check a Power BI connection: fields, token (tenant and app), permissions, visible workspaces "
        "and datasets, capacity type and remaining quota, and drift from a workspace config file.",
    )
    doctor.add_argument("--conn-id", default="powerbi_default", help="Airflow connection id (default: powerbi_default)")
    doctor.add_argument("--config", metavar="FILE", help="workspace config to compare (config/powerbi.yaml layout)")

    refresh = commands.add_parser(
        "refresh", help="trigger refreshes and watch them live",
        description="Trigger refreshes of one or more datasets and watch them until they end. "
        "Exit code 0 when all completed; 1 when any failed, timed out or was refused by Power BI (daily quota, "
        "a refresh already running, a missing table); 2 for usage and connection errors (unknown names, bad "
        "connection, no token, no answer).",
    )
    refresh.add_argument("datasets", nargs="+", metavar="DATASET", help="dataset (semantic model) names or ids")
    refresh.add_argument("--conn-id", default="powerbi_default", help="Airflow connection id (default: powerbi_default)")
    refresh.add_argument("--workspace", "-w", required=True, help="workspace name or id")
    refresh.add_argument("--table", "-t", action="append", default=[], metavar="TABLE",
                         help="refresh only this table (repeatable; an enhanced refresh)")
    refresh.add_argument("--poll-interval", type=_positive, default=1.0, metavar="SECONDS",
                         help="shortest delay between two status checks of a refresh (default: 1); later checks "
                         "back off on the same schedule as a task's wait (docs/decorator.md)")
    refresh.add_argument("--max-poll-interval", type=_positive, default=600.0, metavar="SECONDS",
                         help="longest delay between two status checks of a refresh (default: 600)")
    refresh.add_argument("--timeout", type=float, default=4 * 3600.0, metavar="SECONDS",
                         help="stop watching after this many seconds (default: 4 h); the refresh keeps running")
    refresh.add_argument("--no-wait", action="store_true", help="trigger and exit without watching")

    demo = commands.add_parser(
        "demo", help="run the end-to-end demo (emulator, scaffolded DAG, Airflow run, alert)",
        description="Start the emulator, scaffold a DAG from the template into a temporary folder, run it on an "
        "embedded SQLite Airflow, show the results, then run a failing variant and show the alert. Cleans up.",
    )
    demo.add_argument("--keep", action="store_true", help="keep the temporary folder for inspection")
    return parser


def _cmd_new(args: argparse.Namespace) -> int:
    from pbi_taskflow.cli.scaffold import ScaffoldAborted, ScaffoldError, generate, load_answers, parse_assignments

    try:
        answers = load_answers(args.config_file) if args.config_file else {}
        answers.update(parse_assignments(args.answers))
        path = generate(args.output_dir, answers=answers, no_input=args.no_input, overwrite=args.overwrite)
    except ScaffoldAborted as exc:
        print(f"\naborted: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ScaffoldError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("\naborted; nothing was generated", file=sys.stderr)
        return EXIT_USAGE
    print(f"Created {path}")
    requirement = (path / "requirements.txt").read_text(encoding="utf-8").strip().splitlines()[-1]
    print(f"It installs pbi-taskflow as: {requirement}  (change it in requirements.txt, or pbi_taskflow_source=...)")
    print(f"Next: cd {path} && python -m venv .venv && . .venv/bin/activate && pip install -r requirements-test.txt "
          "&& pytest")
    return EXIT_OK


def _cmd_emulator(args: argparse.Namespace) -> int:
    from pbi_taskflow.emulator.cli import main as emulator_main

    return int(emulator_main(args.args) or 0)


def _cmd_doctor(args: argparse.Namespace) -> int:
    from pbi_taskflow.cli.doctor import run_doctor

    print(f"Checking connection {args.conn_id!r} ...")
    report = run_doctor(args.conn_id, config=args.config)
    print(report.render())
    return EXIT_OK if report.ok else EXIT_FAILED


def _status_table(rows: list[tuple[Handle, RefreshState | None, float]]) -> Any:
    from rich.table import Table

    from pbi_taskflow.observability.status_log import display_status

    table = Table(title="Power BI refreshes", expand=False)
    for column in ("workspace", "dataset", "status", "elapsed", "refresh id", "error"):
        table.add_column(column)
    colours = {"Completed": "green", "Failed": "red", "Cancelled": "yellow", "Disabled": "yellow", "TimedOut": "red"}
    for handle, state, elapsed in rows:
        status = display_status(state.status) if state else "Starting"
        colour = colours.get(status, "cyan")
        error = (state.error_code or "") if state else ""
        table.add_row(handle.workspace_name, handle.dataset_name, f"[{colour}]{status}[/{colour}]",
                      f"{elapsed:,.0f} s", handle.refresh_id, error)
    return table


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        msg = f"expected a positive number of seconds, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def watch_refreshes(client: PowerBIClient, handles: list[Handle], *, poll_interval: float, timeout: float,
                    max_poll_interval: float = 600.0, console: Any = None) -> list[RefreshState | None]:
    """Watch until every refresh ends (or ``timeout``), showing a live table; return the last states.

    Status calls follow :class:`~pbi_taskflow.engine.schedule.PollSchedule`, the schedule of a task's wait in a
    worker or a trigger; the table's elapsed column is redrawn every second between calls.
    """
    from rich.console import Console
    from rich.live import Live

    from pbi_taskflow.engine.schedule import PollSchedule, WatchPlan
    from pbi_taskflow.errors import PowerBIError

    console = console or Console()
    started = time.monotonic()
    schedule = PollSchedule(min_interval=poll_interval, max_interval=max(poll_interval, max_poll_interval))
    keys = [str(index) for index in range(len(handles))]
    plan = WatchPlan(dict.fromkeys(keys, schedule), dict.fromkeys(keys, started))
    states: list[RefreshState | None] = [None] * len(handles)
    try:
        with Live(console=console, refresh_per_second=4, transient=False) as live:
            while True:
                now = time.monotonic()
                for key in plan.due_now(now):
                    handle = handles[int(key)]
                    try:
                        state = client.get_refresh_state(handle)
                    except PowerBIError as exc:  # transient faults are retried inside the client
                        console.print(f"[yellow]status of {handle.dataset_name!r} unavailable: {exc}[/yellow]")
                        plan.observed(key, now, terminal=False)
                        continue
                    states[int(key)] = state
                    plan.observed(key, now, terminal=state.status.is_terminal)
                elapsed = time.monotonic() - started
                live.update(_status_table([(h, s, elapsed) for h, s in zip(handles, states, strict=True)]))
                due = plan.next_due()
                if due is None or elapsed >= timeout:
                    return states
                time.sleep(max(0.0, min(due - time.monotonic(), 1.0, timeout - elapsed)))
    finally:
        if not console.is_terminal:  # rich leaves a non-terminal Live render without its final newline
            console.line()


def _cmd_refresh(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.markup import escape

    from pbi_taskflow.cli.doctor import connection_settings
    from pbi_taskflow.client.models import Refresh
    from pbi_taskflow.errors import ConfigurationError, PowerBIError, PowerBIHTTPError

    console = Console()
    try:
        client = connection_settings(args.conn_id).build_client()
    except ConfigurationError as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}")
        return EXIT_USAGE
    handles = []
    refused: list[tuple[str, PowerBIError]] = []
    with client:
        try:  # every name first: a typo starts nothing
            targets = [client.resolve(Refresh(dataset, args.workspace, tables=args.table or None))
                       for dataset in args.datasets]
        except PowerBIError as exc:
            console.print(f"[red]error:[/red] {escape(str(exc))}")
            return EXIT_USAGE
        for target in targets:
            try:
                handles.append(client.trigger_refresh(target))
            except PowerBIHTTPError as exc:  # Power BI refused this refresh (quota, one running, bad table ...)
                refused.append((target.dataset_name, exc))
                console.print(f"[red]{escape(target.dataset_name)}: Power BI refused the refresh: {escape(str(exc))}[/red]")
                continue
            except PowerBIError as exc:  # no answer or no token: nothing to do with this dataset
                console.print(f"[red]error:[/red] {escape(str(exc))}")
                return EXIT_USAGE if not handles else EXIT_FAILED
            console.print(f"Started refresh {handles[-1].refresh_id} of {target.dataset_name!r} "
                          f"in {target.workspace_name!r}")
        if args.no_wait or not handles:
            return EXIT_FAILED if refused else EXIT_OK
        try:
            states = watch_refreshes(client, handles, poll_interval=args.poll_interval, timeout=args.timeout,
                                     max_poll_interval=args.max_poll_interval, console=console)
        except KeyboardInterrupt:
            console.print("Stopped watching; the refreshes continue in Power BI.")
            return EXIT_INTERRUPTED
    failed = [(h, s) for h, s in zip(handles, states, strict=True) if s is None or not s.status.is_success]
    for handle, state in failed:
        if state is None or not state.status.is_terminal:
            console.print(f"[red]{handle.dataset_name}: still running after {args.timeout:g} s "
                          f"(refresh {handle.refresh_id} continues in Power BI)[/red]")
        else:
            detail = ": ".join(x for x in (state.error_code, state.error_message) if x)
            console.print(f"[red]{handle.dataset_name}: {state.status.value}{' - ' + detail if detail else ''}[/red]")
    for dataset, _ in refused:
        console.print(f"[red]{escape(dataset)}: not refreshed (refused by Power BI, see above)[/red]")
    if not failed and not refused:
        console.print(f"[green]All {len(handles)} refresh(es) completed.[/green]")
    return EXIT_FAILED if failed or refused else EXIT_OK


def _cmd_demo(args: argparse.Namespace) -> int:
    from pbi_taskflow.cli.demo import run_demo

    return run_demo(keep=args.keep)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``pbi-taskflow`` console script; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["emulator"]:  # every option belongs to the emulator's own parser
        return _cmd_emulator(argparse.Namespace(args=argv[1:]))
    parser = build_parser()
    args = parser.parse_args(argv)
    handlers = {"new": _cmd_new, "emulator": _cmd_emulator, "doctor": _cmd_doctor, "refresh": _cmd_refresh,
                "demo": _cmd_demo}
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    return handlers[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
