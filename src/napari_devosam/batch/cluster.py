"""The dask cluster of a batch: a ``LocalCluster`` of worker processes, or a running one.

Workers that advertise a ``GPU`` resource (``dask worker ... --resources GPU=1``) get the
embedding tasks: those request ``{"GPU": 1}`` whenever at least one worker has it; without
such a worker every task runs anywhere.
"""

from __future__ import annotations

import contextlib
import logging


def _distributed():
    try:
        import distributed
    except ImportError:
        raise RuntimeError("devosam batch needs dask.distributed: "
                           "pip install 'napari-devosam[batch]'") from None
    return distributed


@contextlib.contextmanager
def open_client(workers: int = 2, scheduler: str | None = None, timeout: float = 10.0):
    """A ``distributed.Client``: connected to ``scheduler`` (an address) or to a new
    ``LocalCluster`` of ``workers`` single-threaded processes; both closed on exit.

    Raises ``RuntimeError`` naming the address when the scheduler cannot be reached within
    ``timeout`` seconds.
    """
    distributed = _distributed()
    if scheduler:
        try:
            client = distributed.Client(scheduler, timeout=timeout)
        except (OSError, TimeoutError) as exc:
            raise RuntimeError(f"cannot reach the dask scheduler at {scheduler} within "
                               f"{timeout:g} s ({type(exc).__name__})") from None
        try:
            yield client
        finally:
            client.close()
        return
    if workers < 1:
        raise ValueError(f"--workers must be at least 1, got {workers}")
    cluster = distributed.LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
        silence_logs=logging.ERROR,
        env={"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    try:
        with distributed.Client(cluster) as client:
            yield client
    finally:
        cluster.close()


def gpu_resources(client) -> dict | None:
    """``{"GPU": 1}`` when some worker advertises a GPU resource, else None."""
    workers = client.scheduler_info().get("workers", {})
    if any(w.get("resources", {}).get("GPU", 0) >= 1 for w in workers.values()):
        return {"GPU": 1}
    return None
