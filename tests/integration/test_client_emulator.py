"""PowerBIClient against the emulator: real requests over TLS, names, refreshes and every fault."""

from __future__ import annotations

import logging
import time
import uuid

import pytest

from pbi_taskflow.client.auth import ClientSecretCredential
from pbi_taskflow.client.clouds import get_cloud
from pbi_taskflow.client.models import Refresh, RefreshStatus, Target
from pbi_taskflow.client.retry import RetryPolicy
from pbi_taskflow.client.settings import ConnectionSettings
from pbi_taskflow.client.sync import PowerBIClient
from pbi_taskflow.errors import (
    AmbiguousNameError,
    ConfigurationError,
    EnhancedRefreshNotSupportedError,
    InvalidRequestError,
    NotFoundError,
    RefreshAlreadyRunningError,
    RefreshQuotaExceededError,
    ServerError,
    UnknownNameError,
    WorkspaceNotAllowedError,
)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("cold_token_cache")]


@pytest.fixture
def emu(emulator):
    """The reset emulator, 20x faster, with workspace Sales (dedicated) and dataset Revenue."""
    emulator.time_scale = 20.0
    emulator.add_workspace("Sales")
    emulator.add_dataset("Sales", "Revenue", duration=4.0)
    return emulator


def make_client(emu, **kw) -> PowerBIClient:
    """A client from the emulator's Airflow connection, recording retry waits in ``client.waits``."""
    waits: list[float] = []
    kw.setdefault("retry", RetryPolicy(sleep=waits.append, jitter=0.0))
    client = ConnectionSettings.from_mapping(emu.airflow_conn(), conn_id="powerbi_default").build_client(**kw)
    client.waits = waits  # type: ignore[attr-defined]
    return client


def wait_done(client, handle, emu, limit: float = 20.0):
    """Poll until the refresh is terminal (bounded)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        state = client.get_refresh_state(handle)
        if state.status.is_terminal:
            return state
        time.sleep(0.05)
    raise AssertionError("refresh did not finish in time")


def test_standard_refresh_end_to_end(emu):
    """Names resolve case-insensitively, a standard refresh runs to Completed and is matched by RequestId."""
    with make_client(emu) as client:
        target = client.resolve(Refresh("REVENUE", "sales"))
        handle = client.trigger_refresh(target)
        state = wait_done(client, handle, emu)
        result = client.result_from(handle, state)
    assert handle.kind == "standard"
    assert state.status is RefreshStatus.COMPLETED
    assert result.succeeded
    assert result.web_url
    assert target.workspace_id in result.web_url
    assert emu.count("refresh_post") == 1
    assert emu.count("token") == 1


def test_enhanced_refresh_details_and_cancel(emu):
    """An enhanced refresh is followed on the details endpoint and can be cancelled."""
    emu.set_refresh("Revenue", duration=600.0)
    with make_client(emu) as client:
        handle = client.trigger_refresh(client.resolve(Refresh("Revenue", "Sales", tables=["Sales"], type="Full")))
        assert handle.kind == "enhanced"
        assert not client.get_refresh_state(handle).status.is_terminal
        client.cancel_refresh(handle)
        state = client.get_refresh_state(handle)
    assert state.status is RefreshStatus.CANCELLED
    assert emu.count(method="DELETE") == 1


def test_failed_refresh_keeps_the_service_error(emu):
    """A failed refresh reports the code and message parsed from serviceExceptionJson."""
    emu.set_refresh("Revenue", outcome="Failed", error_code="ModelRefreshFailed_CredentialsNotSpecified",
                    error_message="Credentials are missing")
    with make_client(emu) as client:
        handle = client.trigger_refresh(client.resolve(Refresh("Revenue", "Sales")))
        state = wait_done(client, handle, emu)
    assert state.status is RefreshStatus.FAILED
    assert state.error_code == "ModelRefreshFailed_CredentialsNotSpecified"
    assert state.error_message == "Credentials are missing"


def test_standard_refresh_is_matched_by_request_id_not_latest_entry(emu):
    """A scheduled refresh that lands later is never mistaken for ours."""
    with make_client(emu) as client:
        handle = client.trigger_refresh(client.resolve(Refresh("Revenue", "Sales")))
        state = wait_done(client, handle, emu)
        external = emu.start_external_refresh("Revenue", duration=600.0)
        assert client.get_refresh_state(handle).status is RefreshStatus.COMPLETED
        running = client.running_refresh(handle.workspace_id, handle.dataset_id)
    assert state.status is RefreshStatus.COMPLETED
    assert running is not None
    assert running.request_id == external["request_id"]


def test_ambiguous_and_unknown_names_list_candidates(emu):
    """Ambiguous names list every candidate id; unknown names list the closest names."""
    emu.add_dataset("Sales", "revenue")
    with make_client(emu) as client:
        with pytest.raises(AmbiguousNameError) as ambiguous:
            client.resolve(Refresh("Revenue", "Sales"))
        with pytest.raises(UnknownNameError) as unknown:
            client.resolve(Refresh("Revenu", "Sales"))
        with pytest.raises(UnknownNameError, match="Closest names: 'Sales'"):
            client.get_workspace("Sale")
    ids = {c["id"] for c in ambiguous.value.candidates}
    assert len(ids) == 2
    assert all(i in str(ambiguous.value) for i in ids)
    assert {c["name"] for c in unknown.value.candidates} == {"Revenue", "revenue"}


def test_workspace_allow_list_is_enforced_before_any_call(emu):
    """A workspace outside allowed_workspaces fails before any HTTP call, naming workspace and connection."""
    with make_client(emu, allowed_workspaces=["Finance"]) as client, pytest.raises(WorkspaceNotAllowedError) as info:
        client.resolve(Refresh("Revenue", "Sales"))
    assert emu.count() == 0
    assert "'Sales'" in str(info.value)
    assert "powerbi_default" in str(info.value)


def test_allow_list_by_id_admits_the_workspace_by_name(emu):
    """An allow-list of ids admits a workspace named by its name once resolved."""
    ws = emu.add_workspace("Finance")
    emu.add_dataset("Finance", "Ledger")
    with make_client(emu, allowed_workspaces=[ws["id"]]) as client:
        assert client.resolve(Refresh("Ledger", "Finance")).workspace_id == ws["id"]
        with pytest.raises(WorkspaceNotAllowedError):
            client.resolve(Refresh("Revenue", "Sales"))


def test_missing_workspace_is_a_configuration_error(emu):
    """No workspace on the refresh and no default is a clear error."""
    with make_client(emu) as client, pytest.raises(ConfigurationError, match="No workspace"):
        client.resolve(Refresh("Revenue"))


def test_enhanced_on_shared_capacity_fails_before_the_post(emu):
    """Enhanced options on a shared workspace fail before any refresh POST."""
    emu.add_workspace("Pro", dedicated=False)
    emu.add_dataset("Pro", "Small")
    with make_client(emu) as client:
        target = client.resolve(Refresh("Small", "Pro", type="Full"))
        with pytest.raises(EnhancedRefreshNotSupportedError):
            client.trigger_refresh(target)
        unknown_capacity = Target(target.workspace_id, "Pro", target.dataset_id, "Small", target.options, None)
        with pytest.raises(EnhancedRefreshNotSupportedError):
            client.trigger_refresh(unknown_capacity)
    assert emu.count("refresh_post") == 1  # only the one sent without capacity knowledge


def test_already_running_is_its_own_error_and_never_retried(emu):
    """A second POST while a refresh runs raises RefreshAlreadyRunningError after one POST."""
    emu.set_refresh("Revenue", duration=600.0)
    with make_client(emu) as client:
        target = client.resolve(Refresh("Revenue", "Sales"))
        client.trigger_refresh(target)
        with pytest.raises(RefreshAlreadyRunningError, match="already executing"):
            client.trigger_refresh(target)
    assert emu.count("refresh_post") == 2


def test_daily_quota_is_its_own_error(emu):
    """The shared-capacity daily quota raises RefreshQuotaExceededError."""
    emu.add_workspace("Pro", dedicated=False)
    emu.add_dataset("Pro", "Small")
    for _ in range(8):
        emu.add_history("Small", refresh_type="ViaApi", ago=60.0, duration=1.0)
    with make_client(emu) as client:
        target = client.resolve(Refresh("Small", "Pro"))
        with pytest.raises(RefreshQuotaExceededError, match="24 hours"):
            client.trigger_refresh(target)
    assert emu.count("refresh_post") == 1


def test_throttled_status_call_honours_retry_after(emu):
    """A 429 on history is retried after exactly the Retry-After the server sent."""
    with make_client(emu) as client:
        handle = client.trigger_refresh(client.resolve(Refresh("Revenue", "Sales")))
        emu.inject("history", "throttle", retry_after=7)
        client.get_refresh_state(handle)
        assert client.waits == [7.0]
    assert emu.count("history") == 2


@pytest.mark.parametrize(
    ("endpoint", "fault"),
    [
        pytest.param("groups", "error", id="groups-503"),
        pytest.param("datasets", "drop", id="datasets-drop"),
        pytest.param("history", "error", id="history-503"),
        pytest.param("history", "drop", id="history-drop"),
    ],
)
def test_transient_faults_on_reads_are_retried(emu, endpoint, fault):
    """5xx and dropped connections on GETs are retried and the call succeeds; nothing is cancelled."""
    with make_client(emu) as client:
        emu.inject(endpoint, fault, count=2)
        handle = client.trigger_refresh(client.resolve(Refresh("Revenue", "Sales")))
        wait_done(client, handle, emu)
        assert len(client.waits) == 2
    assert emu.count(method="DELETE") == 0
    assert emu.count("refresh_post") == 1


def test_read_timeout_on_status_is_retried(emu):
    """A status call slower than the read timeout is retried."""
    with make_client(emu, timeout=(5.0, 0.5)) as client:
        handle = client.trigger_refresh(client.resolve(Refresh("Revenue", "Sales")))
        emu.inject("history", "slow", delay=1.5)
        client.get_refresh_state(handle)
        assert len(client.waits) == 1
    assert emu.count(method="DELETE") == 0


def test_persistent_server_errors_surface_without_cancelling(emu):
    """After the last attempt a ServerError propagates, and still no DELETE is sent."""
    emu.set_refresh("Revenue", duration=600.0)
    with make_client(emu, retry=RetryPolicy(attempts=3, sleep=lambda s: None)) as client:
        handle = client.trigger_refresh(client.resolve(Refresh("Revenue", "Sales", type="Full")))
        emu.inject("details", "error", count=3, status=500)
        with pytest.raises(ServerError) as info:
            client.get_refresh_state(handle)
    assert "read refresh details" in str(info.value)
    assert "'Revenue'" in str(info.value)
    assert emu.count(method="DELETE") == 0


def run_refreshes(client, *refreshes, **policy):
    """Plan, start and wait for ``refreshes`` as a task does (worker mode, fast polls); return the results."""
    from pbi_taskflow.engine.policy import RefreshPolicy
    from pbi_taskflow.engine.run import RefreshRun
    from pbi_taskflow.engine.waiter import Waiter

    policy = RefreshPolicy(**{"poll_min": 0.05, "poll_max": 0.2, **policy})
    client.appearance_grace = policy.appearance_grace
    run = RefreshRun(deadline=time.time() + 30)
    run.plan(client, [client.resolve(r) for r in refreshes], policy, time.time())
    assert Waiter(run, client, policy, logging.getLogger("test.client")).wait()
    return run.final_results()


@pytest.mark.parametrize("enhanced", [False, True], ids=["standard", "enhanced"])
def test_dropped_refresh_post_is_found_in_history_not_duplicated(emu, enhanced):
    """drop_after on the POST: the request is not sent again; the refresh it started is found in history and
    followed to its end; exactly one refresh exists."""
    emu.set_refresh("Revenue", duration=2.0)
    options = {"type": "Full"} if enhanced else {}
    emu.inject("refresh_post", "drop_after")
    with make_client(emu) as client:
        [result] = run_refreshes(client, Refresh("Revenue", "Sales", **options))
        history = client.refresh_history(result.workspace_id, result.dataset_id)
    assert emu.count("refresh_post") == 1
    assert [e.request_id for e in history] == [result.refresh_id]
    assert result.status is RefreshStatus.COMPLETED
    assert result.kind == ("enhanced" if enhanced else "standard")
    # the refresh found this way could be another caller's that started at the same moment: the record says so
    assert "cannot tell whether this request or another caller started it" in (result.reason or "")


def test_unanswered_refresh_post_that_started_nothing_ends_outcome_unknown(emu):
    """A 503 on the POST (no refresh started): the request is not sent again in the same try; once the
    appearance grace passes with no new refresh in history, the dataset fails with RefreshOutcomeUnknown."""
    emu.inject("refresh_post", "error", status=503)
    with make_client(emu) as client:
        [result] = run_refreshes(client, Refresh("Revenue", "Sales"), appearance_grace=1.0)
    assert emu.count("refresh_post") == 1
    assert result.status is RefreshStatus.FAILED
    assert result.error_code == "RefreshOutcomeUnknown"
    assert "not sent again" in (result.error_message or "")


def test_throttled_refresh_post_waits_and_resends(emu):
    """A 429 on the POST means nothing started: wait Retry-After and send again."""
    with make_client(emu) as client:
        target = client.resolve(Refresh("Revenue", "Sales"))
        emu.inject("refresh_post", "throttle", retry_after=3)
        client.trigger_refresh(target)
        assert client.waits == [3.0]
    assert emu.count("refresh_post") == 2
    assert emu.count("history") == 0


@pytest.mark.parametrize("how", ["fault", "expire_tokens"])
def test_expired_token_is_renewed_once_and_the_call_retried(emu, how):
    """403 TokenExpired makes the client fetch one new token and repeat the call."""
    with make_client(emu) as client:
        handle = client.trigger_refresh(client.resolve(Refresh("Revenue", "Sales")))
        if how == "fault":
            emu.inject("history", "expired_token")
        else:
            emu.expire_tokens()
        assert client.get_refresh_state(handle).status is not None
    assert emu.count("token") == 2
    assert emu.count(method="DELETE") == 0


def test_short_token_lifetime_renews_before_expiry(emu):
    """With tokens under MSAL's 5-minute margin every call gets a fresh, valid token (no 403)."""
    emu.token_lifetime = 60
    with make_client(emu) as client:
        client.list_workspaces()
        client.list_workspaces()
    assert emu.count("token") == 2
    assert all(r.status == 200 for r in emu.requests if r.endpoint == "groups")


def test_not_found_names_the_dataset(emu):
    """An unknown dataset id gives NotFoundError naming operation and dataset."""
    missing = str(uuid.uuid4())
    with make_client(emu) as client, pytest.raises(NotFoundError) as info:
        client.get_dataset(client.get_workspace("Sales"), missing)
    assert missing in str(info.value)
    assert "HTTP 404" in str(info.value)


def test_standard_refresh_cannot_be_cancelled_and_sends_nothing(emu):
    """cancel_refresh on a standard refresh raises and sends no DELETE."""
    with make_client(emu) as client:
        handle = client.trigger_refresh(client.resolve(Refresh("Revenue", "Sales")))
        with pytest.raises(InvalidRequestError, match="enhanced"):
            client.cancel_refresh(handle)
    assert emu.count(method="DELETE") == 0


def test_secret_and_token_never_appear_in_logs_or_errors(emu, caplog):
    """With DEBUG logging everywhere, neither the client secret nor the access token is logged or raised."""
    caplog.set_level(logging.DEBUG)
    with make_client(emu) as client:
        handle = client.trigger_refresh(client.resolve(Refresh("Revenue", "Sales")))
        emu.inject("history", "throttle", retry_after=1)
        client.get_refresh_state(handle)
        token = client.credential.get_token().token
        with pytest.raises(NotFoundError) as info:
            client.get_dataset(handle.workspace_id, str(uuid.uuid4()))
    for secret in (emu.client_secret, token):
        assert secret not in caplog.text
        assert secret not in str(info.value)
        assert secret not in repr(client)
    assert "throttled" in caplog.text.lower()


def test_https_is_required_for_non_loopback_api_roots(emu):
    """A plain-http API root on a real host is refused."""
    cred = ClientSecretCredential(emu.tenant_id, emu.client_id, emu.client_secret,
                                  cloud=get_cloud("public", authority_host=emu.authority_host))
    with pytest.raises(ConfigurationError, match="https"):
        PowerBIClient(credential=cred, api_root="http://api.powerbi.com/v1.0/myorg")


def test_throttle_count_counts_every_429(emu):
    """Each 429 waited out is counted on the client, and per dataset (the refresh POST included) with its wait."""
    with make_client(emu) as client:
        emu.inject("refresh_post", "throttle", retry_after=1)
        handle = client.trigger_refresh(client.resolve(Refresh("Revenue", "Sales")))
        emu.inject("history", "throttle", count=2, retry_after=2)
        client.get_refresh_state(handle)
        assert client.throttle_count == 3
        assert client.throttles == {(handle.workspace_id, handle.dataset_id): [3, 5.0]}
        assert client.waits == [1.0, 2.0, 2.0]
        assert client.take_throttles()
        assert client.throttles == {}


def test_untrusted_api_fails_once_with_ca_bundle_advice(emu):
    """A Power BI endpoint whose certificate is not trusted fails without retries and names ca_bundle."""
    from pbi_taskflow.errors import TransportError

    with make_client(emu) as trusted:
        token_client = trusted.credential
        token_client.get_token()
    client = PowerBIClient(credential=token_client, retry=RetryPolicy(sleep=lambda s: None))  # no ca_bundle
    assert client.api_root == emu.api_root
    with pytest.raises(TransportError, match="ca_bundle"):
        client.list_workspaces()
    assert emu.count("groups") == 0


def test_ambiguous_enhanced_post_does_not_adopt_someone_elses_refresh(emu):
    """After a dropped enhanced POST, a running refresh with other options is someone else's: it is not adopted
    nor cancelled; if_running='wait' waits for it and then sends the request again."""
    emu.set_refresh("Revenue", duration=30.0)
    with make_client(emu) as client:
        other = client.trigger_refresh(client.resolve(Refresh("Revenue", "Sales", type="Calculate")))
        emu.inject("refresh_post", "drop")
        client_target = Refresh("Revenue", "Sales", type="Full", tables=["Sales"])
        from pbi_taskflow.engine.policy import RefreshPolicy
        from pbi_taskflow.engine.run import RefreshRun
        from pbi_taskflow.engine.targets import target_to_dict
        from pbi_taskflow.engine.waiter import Waiter

        policy = RefreshPolicy(poll_min=0.05, poll_max=0.2)
        run = RefreshRun(deadline=time.time() + 30)
        target = client.resolve(client_target)
        run.pending.append(target_to_dict(target))
        assert Waiter(run, client, policy, logging.getLogger("test.client")).wait()
        [result] = run.final_results()
        history = client.refresh_history(target.workspace_id, target.dataset_id)
    assert result.status is RefreshStatus.COMPLETED
    assert result.refresh_id != other.refresh_id
    assert [e.request_id for e in history] == [result.refresh_id, other.refresh_id]
    assert emu.count(method="DELETE") == 0
