"""Independent implementation runs on a Dask cluster (`dask.distributed`).

`cluster(jobs, scheduler)` is the client of an existing cluster (`scheduler`, its
``tcp://host:port`` address) or of a local one of `jobs` workers on this machine, or None for
one job; `mapped` runs a function over arguments on it, or in turn without one. The runs are other
programs (nextpnr, a Verilator model), so local workers are threads of this process, or
processes where the work changes its process' state (cocotb's runner: the environment).
"""

import contextlib

from .errors import UserError


__all__ = ["cluster", "mapped"]


@contextlib.contextmanager
def cluster(jobs=1, scheduler=None, processes=False):
    """A `distributed.Client` for `jobs` local workers (threads, or with `processes` worker
    processes: for work that changes its process' state, as cocotb's runner does), or of the
    cluster at `scheduler`; None (run in turn) for one job and no scheduler."""
    if jobs < 1:
        raise UserError(f"--jobs must be at least 1, got {jobs}")
    if scheduler is None and jobs == 1:
        yield None
        return
    from distributed import Client, LocalCluster

    if scheduler is not None:
        try:
            client = Client(scheduler, timeout=10)
        except (OSError, TimeoutError) as error:
            raise UserError(f"--scheduler {scheduler}: no Dask scheduler answers ({error})") from None
        with client:
            yield client
        return
    with LocalCluster(n_workers=jobs, threads_per_worker=1, processes=processes,
                      dashboard_address=None) as local, Client(local) as client:
        yield client


def mapped(client, function, *arguments):
    """[function(*a) for a in zip(*arguments)], on `client`'s workers when there is one."""
    if client is None:
        return [function(*a) for a in zip(*arguments)]
    return client.gather(client.map(function, *arguments, pure=False))
