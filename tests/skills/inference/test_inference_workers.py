"""``Workers``: a generation runs in a reused daemon thread, at once, never behind another generation."""

from __future__ import annotations

import threading

from skills.inference.workers import Workers


def test_sequential_jobs_reuse_one_thread() -> None:
    workers = Workers("test-workers")
    seen: list[int] = []
    for _ in range(5):
        done = threading.Event()

        def job(done: threading.Event = done) -> None:
            seen.append(threading.get_ident())
            done.set()

        workers.submit(job)
        assert done.wait(5)
        # the worker counts itself idle just after the job returns: wait for that before the next submit
        for _ in range(500):
            with workers._lock:
                if workers._idle:
                    break
            threading.Event().wait(0.01)
    assert workers.started == 1 and len(set(seen)) == 1, (workers.started, seen)


def test_concurrent_jobs_each_get_a_thread_at_once() -> None:
    """Three jobs that only finish together (a barrier): they would deadlock if any waited for a free worker."""
    workers = Workers("test-workers")
    barrier = threading.Barrier(3, timeout=5)
    finished = threading.Semaphore(0)
    names: list[str] = []

    def job() -> None:
        names.append(threading.current_thread().name)
        barrier.wait()
        finished.release()

    for _ in range(3):
        workers.submit(job)
    assert all(finished.acquire(timeout=5) for _ in range(3))
    assert workers.started == 3 and names == ["test-workers"] * 3
    assert all(t.daemon for t in threading.enumerate() if t.name == "test-workers")


def test_a_job_that_raises_leaves_its_worker_usable() -> None:
    workers = Workers("test-workers")
    done = threading.Event()

    def bad() -> None:
        raise RuntimeError("boom")

    workers.submit(bad)
    for _ in range(500):
        with workers._lock:
            if workers._idle:
                break
        threading.Event().wait(0.01)
    workers.submit(done.set)
    assert done.wait(5) and workers.started == 1
