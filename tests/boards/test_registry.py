"""The board registry against amaranth-boards, and `dnnhw boards`."""

import json
import subprocess
import sys

import pytest

from dnnhw.boards import BOARDS, DEFAULT_BOARD, get_board
from dnnhw.errors import UserError


@pytest.mark.parametrize("name", [n for n, b in BOARDS.items() if b.platform])
def test_platform_matches_part(name):
    board = BOARDS[name]
    platform = board.platform_class()
    assert board.part.lower().startswith(platform.device.lower())
    assert platform.package.lower() in board.part.lower()


def test_required_boards():
    assert {"arty", "arty-a7-100", "ulx3s-85f", "orangecrab-25f", "icebreaker", "pynq-z1",
            "zc706"} <= set(BOARDS)
    assert DEFAULT_BOARD == "arty" and BOARDS["arty"].dsp == 90 and BOARDS["arty"].bram == 100


def test_unknown_board():
    with pytest.raises(UserError, match="unknown board 'nexys'.*arty"):
        get_board("nexys")


def test_dse_only_board_has_no_platform():
    with pytest.raises(UserError, match="pynq-z1"):
        BOARDS["pynq-z1"].platform_class()


def test_boards_command_json():
    result = subprocess.run([sys.executable, "-m", "dnnhw", "boards", "--json"],
                            capture_output=True, text=True)
    assert result.returncode == 0
    boards = {b["name"]: b for b in json.loads(result.stdout)}
    assert boards["ulx3s-85f"]["open_flow"] and not boards["arty"]["open_flow"]
