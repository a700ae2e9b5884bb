"""The command line as a subprocess, and the user-error contract (exit 2, one line, no traceback)."""

import pathlib
import subprocess
import sys

DIGITS = pathlib.Path(__file__).parents[2] / "examples" / "digits"


def dnnhw(*args, cwd=None):
    """Run ``python -m dnnhw *args``; returns the completed process (text output captured)."""
    return subprocess.run([sys.executable, "-m", "dnnhw", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd)


def assert_user_error(result, *fragments):
    """Exit status 2, one line on stderr containing every fragment, no traceback."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dnnhw: error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
