"""pbi_taskflow.client.offloop: blocking work runs on threads the event loop never starts itself."""

from __future__ import annotations

import asyncio
import contextvars
import subprocess
import sys
import textwrap
import threading

import pytest

from pbi_taskflow.client import offloop

VAR: contextvars.ContextVar[str] = contextvars.ContextVar("VAR", default="unset")


def test_runs_the_function_on_another_thread_with_the_callers_context() -> None:
    async def main() -> tuple[int, str, int]:
        VAR.set("from the loop")
        return await offloop.run(lambda a, b: (threading.get_ident(), VAR.get(), a + b), 2, 3)

    ident, value, total = asyncio.run(main())
    assert ident != threading.get_ident()
    assert (value, total) == ("from the loop", 5)


def test_the_functions_exception_reaches_the_caller() -> None:
    def fail() -> None:
        raise ValueError("bad answer")

    with pytest.raises(ValueError, match="bad answer"):
        asyncio.run(offloop.run(fail))


def test_the_event_loop_thread_starts_no_thread_and_keeps_running_meanwhile() -> None:
    """In a fresh process: 20 concurrent calls while threads are started; the loop's thread calls
    ``threading.Thread.start`` zero times, and the loop keeps turning while they start."""
    code = textwrap.dedent('''
        import asyncio, threading, time
        starts = []
        real = threading.Thread.start
        def spy(self):
            starts.append(threading.get_ident())
            real(self)
        threading.Thread.start = spy
        from pbi_taskflow.client import offloop
        async def main():
            loop_thread = threading.get_ident()
            ticks = 0
            async def tick():
                nonlocal ticks
                while True:
                    ticks += 1
                    await asyncio.sleep(0)
            ticker = asyncio.create_task(tick())
            names = await asyncio.gather(*(offloop.run(lambda: (time.sleep(0.01), threading.current_thread().name)[1])
                                           for _ in range(20)))
            ticker.cancel()
            return loop_thread, ticks, set(names)
        loop_thread, ticks, names = asyncio.run(main())
        assert loop_thread not in starts, starts
        assert len(starts) >= offloop.WORKERS, starts
        assert ticks > 1, ticks
        assert all(n.startswith("pbi_taskflow-offloop") for n in names), names
        assert len(names) > 1, names
        print("ok")
    ''')
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == "ok"


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork")
def test_a_forked_child_starts_its_own_threads() -> None:
    """A process forked after the executor started (as Airflow's triggerer forks its runner) gets new threads
    instead of the parent's, which do not exist in the child."""
    code = textwrap.dedent('''
        import asyncio, os
        from pbi_taskflow.client import offloop
        assert asyncio.run(offloop.run(int, "1")) == 1
        pid = os.fork()
        if pid == 0:
            code = 0 if asyncio.run(asyncio.wait_for(offloop.run(int, "2"), 20)) == 2 else 1
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, status
        print("ok")
    ''')
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == "ok"


def test_a_later_loop_reuses_the_started_threads() -> None:
    """The threads outlive the loop that first needed them: a later loop's call starts none."""
    asyncio.run(offloop.run(int))
    before = threading.active_count()
    assert asyncio.run(offloop.run(int, "7")) == 7
    assert threading.active_count() == before
