"""The :class:`Emulator`: a local HTTPS Power BI REST + Entra ID server for tests, demos and development."""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import shutil
import tempfile
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pbi_taskflow.emulator.clock import EmulatedClock
from pbi_taskflow.emulator.dataflows import DataflowSeeding
from pbi_taskflow.emulator.faults import FaultQueue
from pbi_taskflow.emulator.gateways import GatewaySeeding
from pbi_taskflow.emulator.profiles import ProfileSeeding
from pbi_taskflow.emulator.requestlog import RequestLog, RequestRecord
from pbi_taskflow.emulator.state import PowerBIState, check_guid, new_id
from pbi_taskflow.emulator.wire import Request, Response

if TYPE_CHECKING:
    from pbi_taskflow.emulator.ca import TLSFiles
    from pbi_taskflow.emulator.dispatch import Dispatcher
    from pbi_taskflow.emulator.entra import Entra, TokenStore
    from pbi_taskflow.emulator.powerbi import PowerBI
    from pbi_taskflow.emulator.transport import TLSServer

SCOPE = "https://analysis.windows.net/powerbi/api/.default"


class Emulator(DataflowSeeding, ProfileSeeding, GatewaySeeding):
    """A local HTTPS Power BI REST + Entra ID emulator that real MSAL and ``requests`` clients use unchanged.

    It binds 127.0.0.1 only, serves in a daemon thread, and trusts a throwaway CA whose bundle is
    :attr:`ca_bundle`. Use it as a context manager, or call :meth:`start` and :meth:`stop`.

    :param port: TCP port on 127.0.0.1; 0 picks a free one.
    :param time_scale: emulated seconds per real second; refresh durations and history timestamps are emulated time.
    :param token_lifetime: ``expires_in`` of issued access tokens, in real seconds.
    :param seed: a scenario mapping or YAML file path applied at construction (see :meth:`seed`).
    :param tenant_id: the default tenant id (a random GUID when omitted).
    :param client_id: the default app's client id (a random GUID when omitted).
    :param client_secret: the default app's secret (random when omitted).
    """

    scope = SCOPE

    def __init__(self, port: int = 0, time_scale: float = 1.0, token_lifetime: float = 3599,
                 seed: Mapping[str, Any] | str | os.PathLike[str] | None = None, *, tenant_id: str | None = None,
                 client_id: str | None = None, client_secret: str | None = None) -> None:
        self._port = port
        self._initial_time_scale = time_scale
        self._initial_token_lifetime = token_lifetime
        self.tenant_id = check_guid(tenant_id or new_id(), "tenant_id")
        self.client_id = check_guid(client_id or new_id(), "client_id")
        self.client_secret = client_secret or f"{secrets.token_urlsafe(6)}~{secrets.token_urlsafe(24)}"
        self._clock = EmulatedClock(time_scale)
        self.state = PowerBIState(self._clock)
        self.faults = FaultQueue()
        self.log = RequestLog()
        self._entra_obj: Entra | None = None
        self._powerbi_obj: PowerBI | None = None
        self._dispatcher_obj: Dispatcher | None = None
        self._token_lifetime = token_lifetime
        self._server: TLSServer | None = None
        self._thread: threading.Thread | None = None
        self._tmpdir: str | None = None
        self._tls: TLSFiles | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        if seed is not None:
            self.seed(seed)

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> Emulator:
        """Generate the TLS material, bind 127.0.0.1 and serve in a daemon thread."""
        from pbi_taskflow.emulator.ca import write_tls_files
        from pbi_taskflow.emulator.transport import TLSServer, server_context

        with self._lock:
            if self._server is not None:
                return self
            self._stopping.clear()
            self._tmpdir = tempfile.mkdtemp(prefix="pbi-taskflow-emulator-")
            try:
                self._tls = write_tls_files(self._tmpdir)
                self._dispatcher()
                self._server = TLSServer(self._port, server_context(self._tls.server_cert, self._tls.server_key),
                                         self._dispatch)
            except BaseException:
                shutil.rmtree(self._tmpdir, ignore_errors=True)
                self._tmpdir = None
                raise
            self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                            name=f"pbi-emulator-{self.port}", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving (bounded: open connections are daemon threads) and delete the TLS files."""
        with self._lock:
            server, thread, self._server, self._thread = self._server, self._thread, None, None
            self._stopping.set()
            if server is not None:
                server.close_all()
            if thread is not None:
                thread.join(timeout=5)
            if self._tmpdir is not None:
                shutil.rmtree(self._tmpdir, ignore_errors=True)
                self._tmpdir = None

    def __enter__(self) -> Emulator:  # noqa: PYI034
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.url if self._server is not None else "not started"
        return f"Emulator({where}, tenant_id={self.tenant_id!r}, client_id={self.client_id!r})"

    @property
    def running(self) -> bool:
        return self._server is not None

    # --- connection facts ----------------------------------------------------------------------

    def _started(self) -> TLSServer:
        if self._server is None:
            msg = "The emulator is not running; call start() or use 'with Emulator() as emu:'."
            raise RuntimeError(msg)
        return self._server

    @property
    def port(self) -> int:
        return int(self._started().server_address[1])

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def authority_host(self) -> str:
        return self.url

    @property
    def authority(self) -> str:
        return f"{self.url}/{self.tenant_id}"

    @property
    def api_root(self) -> str:
        return f"{self.url}/v1.0/myorg"

    @property
    def ca_bundle(self) -> str:
        """A PEM with the system CAs plus the emulator CA (usable as ``verify=`` or ``REQUESTS_CA_BUNDLE``)."""
        self._started()
        assert self._tls is not None
        return self._tls.ca_bundle

    @property
    def ca_cert(self) -> str:
        """A PEM with the emulator CA alone."""
        self._started()
        assert self._tls is not None
        return self._tls.ca_cert

    def airflow_conn(self) -> dict[str, Any]:
        """The Airflow connection (type ``pbi_taskflow``) for the default app, as a dict."""
        return {"conn_type": "pbi_taskflow", "login": self.client_id, "password": self.client_secret,
                "extra": {"tenant_id": self.tenant_id, "authority_host": self.authority_host,
                          "api_root": self.api_root, "ca_bundle": self.ca_bundle}}

    def airflow_conn_json(self) -> str:
        """The value for ``AIRFLOW_CONN_<ID>``."""
        return json.dumps(self.airflow_conn())

    def settings(self) -> dict[str, Any]:
        """The connection values, flat (the keys ``ConnectionSettings.from_mapping`` reads)."""
        conn = self.airflow_conn()
        return {"login": conn["login"], "password": conn["password"], **conn["extra"]}

    @property
    def tls_handshakes(self) -> tuple[int, int]:
        """TLS handshakes (completed, failed) since the start: each completed one is a new client connection."""
        server = self._server
        return (server.handshakes, server.handshake_failures) if server is not None else (0, 0)

    # --- clock and tokens ----------------------------------------------------------------------

    def clock(self) -> dt.datetime:
        """The emulated "now" (aware UTC); it advances ``time_scale`` times faster than real time."""
        return self._clock.now()

    def sleep(self, emulated_seconds: float) -> None:
        """Sleep ``emulated_seconds`` of emulated time (``emulated_seconds / time_scale`` real seconds)."""
        self._clock.sleep(emulated_seconds)

    def advance(self, emulated_seconds: float) -> None:
        """Move the emulated clock forward at once (running refreshes progress accordingly)."""
        self._clock.advance(emulated_seconds)

    @property
    def time_scale(self) -> float:
        return self._clock.time_scale

    @time_scale.setter
    def time_scale(self, value: float) -> None:
        self._clock.time_scale = value

    @property
    def token_lifetime(self) -> float:
        return self._token_lifetime

    @token_lifetime.setter
    def token_lifetime(self, value: float) -> None:
        self._token_lifetime = value
        if self._entra_obj is not None:
            self._entra_obj.token_lifetime = value

    @property
    def refresh_in(self) -> float | None:
        """When set, token responses carry ``refresh_in`` (seconds), so MSAL renews proactively."""
        return self._entra().refresh_in

    @refresh_in.setter
    def refresh_in(self, value: float | None) -> None:
        self._entra().refresh_in = value

    def issued_tokens(self) -> list[str]:
        """Every access token this emulator issued (to check that none leaks into logs, XComs or alerts)."""
        return self._entra().tokens.issued()

    def expire_tokens(self) -> None:
        """Every access token issued so far now gets ``403 TokenExpired``."""
        self._entra().tokens.expire_all()

    def issue_federated_token(self, *, subject: str, issuer: str, audience: str = "api://AzureADTokenExchange",
                              lifetime: float = 600) -> str:
        """A JWT signed by the emulated external identity provider, for federated credentials."""
        return self._entra().issue_federated_token(subject=subject, issuer=issuer, audience=audience,
                                                   lifetime=lifetime)

    # --- scenario ------------------------------------------------------------------------------

    def add_app(self, client_id: str, *, secret: str | None = None, secret_expired: bool = False,
                certificate_pem: str | bytes | None = None, federated: list[dict[str, str]] | None = None,
                tenant_id: str | None = None) -> dict[str, Any]:
        """Register an app (or add credentials to it) in ``tenant_id`` (default: the emulator's tenant)."""
        app = self._entra().add_app(client_id, tenant_id or self.tenant_id, secret=secret,
                                    secret_expired=secret_expired, certificate_pem=certificate_pem,
                                    federated=federated)
        return {"client_id": app.client_id, "tenant_id": app.tenant_id}

    def add_workspace(self, name: str, *, id: str | None = None, dedicated: bool = True,
                      members: list[str] | None = None, profile: str | None = None) -> dict[str, Any]:
        """Add a workspace; ``dedicated=False`` puts it on shared capacity (quota, no enhanced refresh).

        ``members`` lists the client ids allowed in it (default: every app); other apps do not see it in the
        groups list and get 401 ``PowerBINotAuthorizedException`` on its routes. ``profile`` (a profile's id or
        display name, see :meth:`add_profile`): the workspace belongs to that service principal profile, so only
        calls with its ``X-PowerBI-Profile-Id`` see it; without, it belongs to the app itself.
        """
        return self.state.add_workspace(name, id=id, dedicated=dedicated, members=members, profile=profile).to_dict()

    def add_dataset(self, workspace: str, name: str, *, id: str | None = None, refreshable: bool = True,
                    duration: float = 1.0, outcome: str = "Completed", error_code: str | None = None,
                    error_message: str | None = None, history_lag: float = 0.0,
                    details_lag: float = 0.0, tables: list[str] | dict[str, list[str] | None] | None = None
                    ) -> dict[str, Any]:
        """Add a dataset to a workspace (by name or id); ``duration`` and the lags are in emulated seconds.

        ``tables``: the model's tables, as a list of names (each with one partition of the same name) or a
        mapping of table name to partition names. Once seeded, an enhanced refresh whose ``objects`` name
        another table or partition is refused with 400 ``InvalidRequest`` naming it, as Power BI refuses it,
        and ``GET .../tables`` lists them. Unseeded (``None``), any table name is accepted.

        ``history_lag``: a refresh that starts appears in the history (``GET .../refreshes``) only this long
        after its start. ``details_lag``: an enhanced refresh's execution details (``GET .../refreshes/{id}``)
        answer 404 ``ItemNotFound`` for this long after its start. Power BI does both at times.
        """
        return self.state.add_dataset(workspace, name, id=id, refreshable=refreshable, duration=duration,
                                      outcome=outcome, error_code=error_code, error_message=error_message,
                                      history_lag=history_lag, details_lag=details_lag, tables=tables).to_dict()

    def set_tables(self, dataset: str, tables: list[str] | dict[str, list[str] | None] | None) -> None:
        """Seed the tables and partitions of a dataset (by id or name), as ``add_dataset(tables=...)``; ``None``
        forgets them (any table name is accepted again)."""
        self.state.set_tables(dataset, tables)

    def set_refresh(self, dataset: str, *, duration: float | None = None, outcome: str | None = None,
                    error_code: str | None = None, error_message: str | None = None,
                    history_lag: float | None = None, details_lag: float | None = None) -> None:
        """Change how the next refreshes of a dataset (by id or name) behave (see :meth:`add_dataset`)."""
        self.state.set_refresh(dataset, duration=duration, outcome=outcome, error_code=error_code,
                               error_message=error_message, history_lag=history_lag, details_lag=details_lag)

    def add_history(self, dataset: str, *, status: str = "Completed", start: dt.datetime | None = None,
                    end: dt.datetime | None = None, duration: float | None = None, refresh_type: str = "Scheduled",
                    ago: float | None = None, error_code: str | None = None,
                    error_message: str | None = None) -> dict[str, Any]:
        """Add a finished history entry; ``ago`` is how many emulated seconds ago it ended (default 1 h)."""
        run = self.state.add_history(dataset, status=status, start=start, end=end, duration=duration,
                                     refresh_type=refresh_type, ago=ago, error_code=error_code,
                                     error_message=error_message)
        return {"request_id": run.request_id, "start": run.start, "end": run.end, "status": status}

    def start_external_refresh(self, dataset: str, *, duration: float, refresh_type: str = "Scheduled",
                               outcome: str | None = None) -> dict[str, Any]:
        """Start a refresh nobody in the test asked for (a schedule, a portal click); returns its request id."""
        with self.state.lock:
            ds = self.state.dataset(dataset)
            if ds.running(self._clock.now()) is not None:
                msg = f"Dataset {ds.name!r} already has a refresh running; wait for it before starting another."
                raise ValueError(msg)
            run = self.state.start_refresh(ds, refresh_type=refresh_type, duration=duration, outcome=outcome)
            return {"request_id": run.request_id, "start": run.start, "end": run.end}

    def seed(self, scenario: Mapping[str, Any] | str | os.PathLike[str]) -> None:
        """Apply a scenario: a mapping, or the path of a YAML/JSON file (see :mod:`pbi_taskflow.emulator.scenario`)."""
        from pbi_taskflow.emulator.scenario import apply_scenario

        apply_scenario(self, scenario)

    def inject(self, endpoint: str, fault: str, *, count: int = 1, retry_after: float = 1, status: int = 503,
               delay: float = 2.0, dataset: str | None = None, refresh_type: str = "Scheduled",
               duration: float | None = None, workspace: str | None = None) -> None:
        """Make the next ``count`` calls to ``endpoint`` answer with ``fault`` instead of the normal answer.

        For example ``inject("refresh_post", "throttle", dataset="Sales")`` throttles the next refresh POST
        of Sales only; the other datasets' calls pass untouched (their order does not matter).

        :param endpoint: ``discovery``, ``token``, ``groups``, ``datasets``, ``dataset``, ``refresh_post``,
            ``history``, ``details``, ``cancel`` or ``*`` (any).
        :param fault: ``throttle`` (429 + ``Retry-After: retry_after``), ``error`` (``status``; 401 answers
            ``PowerBINotAuthorizedException``, 403 ``Forbidden``, whatever the token), ``drop`` (close the
            connection unanswered), ``drop_after`` (do the work, e.g. start the refresh, then close unanswered),
            ``slow`` (answer after ``delay`` real seconds), ``expired_token`` (403 TokenExpired; Power BI
            endpoints), ``lost`` (refresh_post answers 202 but starts nothing, so the refresh never shows up),
            ``race`` (refresh_post: a foreign refresh of ``refresh_type`` starts on the dataset just before the
            POST is processed, which then answers "Another refresh request is already executing") or
            ``race_drop`` (refresh_post: the POST is dropped unanswered and starts nothing, while a foreign
            refresh starts at that moment).
        :param dataset: a dataset name or id: only calls about that dataset see the fault (endpoints
            ``dataset``, ``tables``, ``refresh_post``, ``history``, ``details``, ``cancel`` or ``*``).
        :param workspace: a workspace name or id: only calls about that workspace see the fault (the dataset
            endpoints, ``datasets`` or ``*``); combine with ``dataset`` or use alone.
        :param refresh_type: the foreign refresh's type for ``race`` / ``race_drop`` (``Scheduled``, ``OnDemand``,
            ``ViaApi`` or ``ViaEnhancedApi``: another app's API call).
        :param duration: the foreign refresh's duration in emulated seconds (default: the dataset's).
        """
        dataset_id = self.state.dataset(dataset).id if dataset is not None else None
        workspace_id = self.state.workspace(workspace).id if workspace is not None else None
        self.faults.inject(endpoint, fault, count=count, retry_after=retry_after, status=status, delay=delay,
                           dataset=dataset_id, refresh_type=refresh_type, duration=duration, workspace=workspace_id)

    # --- request log ---------------------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request answered (or dropped) since the start or the last :meth:`reset`."""
        return self.log.records()

    def count(self, endpoint: str | None = None, method: str | None = None) -> int:
        """How many requests hit ``endpoint`` (and ``method``); all requests when both are ``None``."""
        return self.log.count(endpoint, method)

    def reset(self) -> None:
        """Back to the default tenant and app: no workspaces, no faults, an empty log, initial knobs."""
        self.state.clear()
        self.faults.clear()
        self.log.clear()
        self._clock.time_scale = self._initial_time_scale
        self.token_lifetime = self._initial_token_lifetime
        if self._entra_obj is not None:
            with self._entra_obj.lock:
                self._entra_obj.apps.clear()
                self._entra_obj.tenants.clear()
                self._entra_obj.refresh_in = None
            self._register_default_app(self._entra_obj)

    # --- internals -----------------------------------------------------------------------------

    def _register_default_app(self, entra: Entra) -> None:
        entra.add_app(self.client_id, self.tenant_id, secret=self.client_secret)

    def _entra(self) -> Entra:
        if self._entra_obj is None:
            from pbi_taskflow.emulator.entra import Entra, TokenStore
            from pbi_taskflow.emulator.powerbi import PowerBI

            tokens: TokenStore = TokenStore()
            entra = Entra(lambda: self.url, tokens)
            entra.token_lifetime = self._token_lifetime
            self._register_default_app(entra)
            self._powerbi_obj = PowerBI(self.state, tokens, lambda: self.api_root)
            self._entra_obj = entra
        return self._entra_obj

    def _dispatcher(self) -> Dispatcher:
        if self._dispatcher_obj is None:
            from pbi_taskflow.emulator.dispatch import Dispatcher

            entra = self._entra()
            assert self._powerbi_obj is not None
            self._dispatcher_obj = Dispatcher(entra, self._powerbi_obj, self.faults, self.log, self._clock,
                                              self._stopping)
        return self._dispatcher_obj

    def _dispatch(self, request: Request) -> Response:
        return self._dispatcher()(request)
