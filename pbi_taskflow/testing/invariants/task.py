"""I4 and I5: the task's final state follows its ``fail_policy``, and no secret shows in what it wrote."""

from __future__ import annotations

from pbi_taskflow.testing.invariants.model import AT_TIMEOUT, FAILURES, OUTCOME_UNKNOWN, WAIT_TIMEOUT, Context


def check_state(ctx: Context) -> None:
    """I4: a timeout or a person's kill fails the task; otherwise ``fail_policy`` over the results decides."""
    obs = ctx.obs
    state = obs.state
    if obs.killed:
        if state == "success":
            ctx.flag("I4", None, "a person killed the task, yet it ended in success")
        return
    results = obs.results
    if results is None:
        if state == "success":
            ctx.flag("I4", None, "the task succeeded without reporting results")
        return
    statuses = [str(r.get("status")) for r in results]
    # the task's timeout fails it, also when it only left items unstarted ("timed out before it could start")
    # ... and when a refresh the history did not list yet ends with its outcome unknown at the timeout
    timed_out = any(r.get("status") == "TimedOut" and r.get("error_code") == WAIT_TIMEOUT for r in results) or \
        any(r.get("status") == "Skipped" and str(r.get("reason") or "").startswith("timed out") for r in results) \
        or any(r.get("error_code") == OUTCOME_UNKNOWN and AT_TIMEOUT in str(r.get("error_message") or "")
               for r in results)
    failed = [s for s in statuses if s in FAILURES]
    ran = [s for s in statuses if s != "Skipped"]
    if obs.fail_policy == "all":
        should_fail = timed_out or (bool(failed) and len(failed) == len(ran))
    else:
        should_fail = timed_out or bool(failed)
    expected = "failed" if should_fail else "success"
    if state != expected:
        ctx.flag("I4", None, f"task ended {state}, but fail_policy={obs.fail_policy!r} with results "
                 f"{sorted(statuses)} means {expected}")


def check_secrets(ctx: Context) -> None:
    """I5: neither the client secret nor an access token the emulator issued in any log line, XCom or alert."""
    secrets = [("the client secret", ctx.emu.client_secret)]
    secrets += [("an access token", token) for token in ctx.emu.issued_tokens()]
    for text in ctx.obs.texts:
        for what, secret in secrets:
            if secret and secret in text:
                line = next((ln for ln in text.splitlines() if secret in ln), "")
                ctx.flag("I5", None, f"{what} appears in the task's output: {line.replace(secret, '<SECRET>')[:200]!r}")
                return
