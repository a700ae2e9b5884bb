"""nextpnr seeds at once on a Dask local cluster (`dnnhw.parallel`, `board_flow(seeds=...)`):
each seed's run in its own copy of the build, the best kept as board/, the others removed.
Place and route is stood in for here; test_board.py runs nextpnr."""

import re

import pytest

from dnnhw.accel import Accelerator
from dnnhw.boards import get_board
from dnnhw.errors import UserError
from dnnhw.parallel import cluster, mapped
from dnnhw.toolchain import board as board_module
from support.onnx_models import tiny_network


def test_mapped_in_turn_and_on_a_cluster():
    assert mapped(None, pow, [2, 3], [3, 2]) == [8, 9]
    with cluster(jobs=2) as client:
        assert client is not None and len(client.scheduler_info()["workers"]) == 2
        assert mapped(client, pow, [2, 3], [3, 2]) == [8, 9]
    with cluster(jobs=1) as client:
        assert client is None
    with pytest.raises(UserError, match="--jobs must be at least 1, got 0"):
        with cluster(jobs=0):
            pass


def test_best_seed_kept(monkeypatch, tmp_path):
    fmax = {1: 90.0, 2: 120.0, 3: 110.0}

    def place_and_route(board_name, folder):      # Dask pickles it: it reports by files
        seed = int(re.search(r"--seed (\d+)", (folder / "build_top.sh").read_text()).group(1))
        (folder / "seed.txt").write_text(str(seed))
        return {"lut": seed}, {"fmax_mhz": fmax[seed], "timing_met": fmax[seed] >= 100}

    monkeypatch.setattr(board_module, "place_and_route", place_and_route)
    accel = Accelerator(tiny_network(tmp_path)[0])
    with cluster(jobs=3) as client:
        synth, pnr, _ = board_module.board_flow(accel, get_board("ulx3s-12f"), tmp_path / "board",
                                                clock_mhz=100, seeds=(1, 2, 3), client=client)
    assert synth == {"lut": 2}
    assert pnr["seeds"] == [{"seed": 1, "fmax_mhz": 90.0, "kept": False},
                            {"seed": 2, "fmax_mhz": 120.0, "kept": True},
                            {"seed": 3, "fmax_mhz": 110.0, "kept": False}]
    assert (tmp_path / "board" / "seed.txt").read_text() == "2"
    assert not list(tmp_path.glob("board.seed*"))
