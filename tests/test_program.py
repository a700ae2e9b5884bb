"""`dnnhw program`: the openFPGALoader command for each open-flow board (no board needed), the
builds it refuses, and a clean failure (exit status 2, one line) when no board answers."""

import json

import pytest

from dnnhw.errors import UserError
from dnnhw.program import OPENFPGALOADER_BOARDS, command
from support.cli import assert_user_error, dnnhw


def _build(folder, board, bitstream="board/top.bit"):
    """A build folder as `build` leaves it: its report, and the bitstream it names."""
    (folder / "board").mkdir(parents=True)
    (folder / "report.json").write_text(json.dumps({"board": board,
                                                    "pnr": {"bitstream": bitstream}}))
    if bitstream:
        (folder / bitstream).write_bytes(b"\xff\x00")
    return folder


@pytest.mark.parametrize("board, name, bitstream", [
    ("ulx3s-85f", "ulx3s", "board/top.bit"), ("ulx3s-12f", "ulx3s", "board/top.bit"),
    ("orangecrab-25f", "orangeCrab", "board/top.bit"), ("icebreaker", "ice40_generic", "board/top.bin")])
def test_commands(tmp_path, board, name, bitstream):
    folder = _build(tmp_path / "b", board, bitstream)
    path = str(folder / bitstream)
    assert command(folder, flash=True, executable="ofl") == ["ofl", "-b", name, "-f", path]
    if OPENFPGALOADER_BOARDS[board][1]:
        assert command(folder, executable="ofl") == ["ofl", "-b", name, path]
    else:
        with pytest.raises(UserError, match=rf"^{board}: openFPGALoader writes this board's "
                                            r"configuration flash only .*: use --flash$"):
            command(folder, executable="ofl")


def test_every_open_flow_board_has_a_command():
    from dnnhw.boards import BOARDS
    assert {b.name for b in BOARDS.values() if b.open_flow} == set(OPENFPGALOADER_BOARDS)


@pytest.mark.parametrize("board, bitstream, message", [
    ("arty", "board/top.bit", "a build for 'arty', which dnnhw cannot program"),
    ("ulx3s-85f", None, "the build has no bitstream (built with --no-synth"),
])
def test_refused(tmp_path, board, bitstream, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(")):
        command(_build(tmp_path / "b", board, bitstream))


def test_no_build(tmp_path):
    assert_user_error(dnnhw("program", tmp_path), "no build here (no readable report.json)")


def test_no_board_attached(tmp_path):
    """This machine has no board (and no libusb): one line, exit status 2."""
    assert_user_error(dnnhw("program", _build(tmp_path / "b", "ulx3s-85f")), "openFPGALoader")
