"""``pbi-taskflow emulator``: serve the Power BI + Entra ID emulator until interrupted."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from pbi_taskflow.emulator.server import Emulator

_LOOPBACK_NAMES = {"127.0.0.1", "localhost"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pbi-taskflow emulator",
        description="Serve a local HTTPS Power BI REST + Entra ID emulator on 127.0.0.1 until interrupted.",
    )
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (default: any free port)")
    parser.add_argument("--host", default="127.0.0.1", help="only 127.0.0.1 (or localhost) is allowed")
    parser.add_argument("--seed", metavar="FILE", help="scenario YAML/JSON file (default: a demo workspace)")
    parser.add_argument("--time-scale", type=float, default=1.0, metavar="X",
                        help="emulated seconds per real second (default 1)")
    parser.add_argument("--tenant-id", help="fixed tenant id (default: a random GUID)")
    parser.add_argument("--client-id", help="fixed client id of the default app (default: a random GUID)")
    parser.add_argument("--client-secret", help="fixed secret of the default app (default: random)")
    parser.add_argument("--json", action="store_true",
                        help="print one line of JSON with the connection facts first, then serve")
    return parser


def facts(emu: Emulator) -> dict[str, Any]:
    """Everything a client needs to talk to ``emu``."""
    conn_json = emu.airflow_conn_json()
    return {
        "url": emu.url,
        "api_url": emu.api_root,
        "api_root": emu.api_root,
        "authority": emu.authority,
        "oidc_authority": f"{emu.authority}/v2.0",
        "authority_host": emu.authority_host,
        "tenant_id": emu.tenant_id,
        "client_id": emu.client_id,
        "client_secret": emu.client_secret,
        "scope": emu.scope,
        "ca_bundle": emu.ca_bundle,
        "ca_cert": emu.ca_cert,
        "airflow_conn": conn_json,
        "env": {"AIRFLOW_CONN_POWERBI_DEFAULT": conn_json, "REQUESTS_CA_BUNDLE": emu.ca_bundle},
        # keyword arguments for msal.ConfidentialClientApplication (MSAL would otherwise ask
        # login.microsoftonline.com to validate the 127.0.0.1 authority)
        "msal": {"client_id": emu.client_id, "client_credential": emu.client_secret, "authority": emu.authority,
                 "instance_discovery": False},
        "notes": "Trust ca_bundle: export REQUESTS_CA_BUNDLE=<ca_bundle> (it overrides a per-session verify=). "
                 "MSAL: ConfidentialClientApplication(**msal), or oidc_authority=<oidc_authority> with default "
                 "flags; scope [<scope>].",
    }


def banner(emu: Emulator, out: TextIO) -> None:
    """A short human-readable description of the running emulator and how to use it."""
    info = facts(emu)
    workspaces = ", ".join(f"{w.name!r} ({len(w.datasets)} datasets)" for w in emu.state.workspaces.values())
    lines = [
        f"Power BI + Entra ID emulator serving on {info['url']} (time scale x{emu.time_scale:g})",
        f"  API root       {info['api_url']}",
        f"  Authority      {info['authority']}   (MSAL: instance_discovery=False)",
        f"  OIDC authority {info['oidc_authority']}   (MSAL oidc_authority=, no extra flags needed)",
        f"  Tenant id      {info['tenant_id']}",
        f"  Client id      {info['client_id']}",
        f"  Client secret  {info['client_secret']}",
        f"  Scope          {info['scope']}",
        f"  CA bundle      {info['ca_bundle']}",
        f"  Workspaces     {workspaces or 'none'}",
        "",
        "Trust the emulator: export REQUESTS_CA_BUNDLE=" + info["ca_bundle"],
        "  (REQUESTS_CA_BUNDLE overrides a per-session verify=, so point it at this bundle: it holds the",
        "  system CAs plus the emulator CA.)",
        "Airflow connection:",
        f"  export AIRFLOW_CONN_POWERBI_DEFAULT='{info['airflow_conn']}'",
        "Press Ctrl+C to stop.",
    ]
    out.write("\n".join(lines) + "\n")
    out.flush()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the emulator until SIGINT/SIGTERM; returns the process exit code."""
    args = build_parser().parse_args(argv)
    if args.host not in _LOOPBACK_NAMES:
        sys.stderr.write(f"error: --host {args.host!r} is not allowed; the emulator binds 127.0.0.1 only.\n")
        return 2
    from pbi_taskflow.emulator.scenario import DEFAULT_SCENARIO
    from pbi_taskflow.emulator.server import Emulator

    try:
        emu = Emulator(port=args.port, time_scale=args.time_scale, seed=args.seed or DEFAULT_SCENARIO,
                       tenant_id=args.tenant_id, client_id=args.client_id, client_secret=args.client_secret)
        emu.start()
    except (ValueError, OSError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    stop = threading.Event()
    main_thread = threading.current_thread() is threading.main_thread()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)} if main_thread else {}
    if main_thread:  # SIGINT too: a shell starting it in the background hands it SIGINT ignored
        for sig in previous:
            signal.signal(sig, lambda *_: stop.set())
    try:
        if args.json:
            sys.stdout.write(json.dumps(facts(emu)) + "\n")
            sys.stdout.flush()
        else:
            banner(emu, sys.stdout)
        while not stop.wait(0.2):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        for sig in previous:  # a second Ctrl+C must not interrupt the (bounded) shutdown
            signal.signal(sig, signal.SIG_IGN)
        emu.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
