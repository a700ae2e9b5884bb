"""`verify --jobs 2`: the unstalled run's frames in two shards and the stalled run simulate
at once on a Dask local cluster, and verify.json is the one `--jobs 1` writes (but for the
wall-clock figures and the simulated cycles: each shard fills the pipeline)."""

import json

import onnx
import pytest

from support import onnx_models
from support.cli import assert_user_error, dnnhw

#: verify.json's wall-clock figures, which differ between any two runs, and the cycles simulated.
_DIFFER = ("seconds", "compile_seconds", "cycles_per_second", "simulated_cycles")


@pytest.mark.slow          # 36 s: a build, and verify twice (test_parallel.py's cluster runs by default)
def test_jobs_2_gives_the_same_verify_json(tmp_path):
    path = tmp_path / "mlp.onnx"
    onnx.save(onnx_models.mlp(), path)
    out = tmp_path / "build"
    assert dnnhw("build", path, "--board", "arty", "--no-synth", "--out", out).returncode == 0
    results = []
    for jobs in (1, 2):
        done = dnnhw("verify", out, "--frames", 6, "--jobs", jobs)
        assert done.returncode == 0, done.stderr
        results.append(json.loads((out / "verify.json").read_text()))
    same = [{k: v for k, v in r.items() if k not in _DIFFER} for r in results]
    assert same[0] == same[1] and same[0]["bit_exact"]
    # two shards of three frames: the pipeline filled twice, more cycles simulated in all
    assert results[1]["simulated_cycles"] > results[0]["simulated_cycles"]
    assert_user_error(dnnhw("verify", out, "--jobs", 0), "--jobs must be at least 1, got 0")
