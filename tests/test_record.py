"""The build record (`dnnhw.record`): quantized graphs and plans written as JSON and .npz and
read back equal, field by field and type by type; a missing or corrupt record refused in one
sentence."""

import dataclasses
import json
import shutil

import numpy as np
import onnx
import pytest

from dnnhw import frontend, quant, record
from dnnhw.errors import UserError
from dnnhw.model import Folding
from support import onnx_models, zoo


def assert_same(a, b, where="graph"):
    """`a` and `b` equal and of the same types all the way down: dataclasses field by field,
    arrays by dtype, shape and values, containers by type and items."""
    assert type(a) is type(b), (where, type(a), type(b))
    if dataclasses.is_dataclass(a):
        for f in dataclasses.fields(a):
            assert_same(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    elif isinstance(a, np.ndarray):
        assert (a.dtype, a.shape) == (b.dtype, b.shape), where
        np.testing.assert_array_equal(a, b, err_msg=where)
    elif isinstance(a, dict):
        assert list(a) == list(b), where
        for key in a:
            assert_same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for k, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{k}]")
    elif isinstance(a, float):
        assert repr(a) == repr(b), (where, a, b)        # -0.0 and nan too
    else:
        assert a == b, (where, a, b)


def test_assert_same_is_strict():
    with pytest.raises(AssertionError):
        assert_same((1, 2), [1, 2])
    with pytest.raises(AssertionError):
        assert_same({"a": 1}, {"a": 1.0})
    with pytest.raises(AssertionError):
        assert_same(np.zeros(2, np.int64), np.zeros(2, np.int32))
    with pytest.raises(AssertionError):
        assert_same(-0.0, 0.0)
    with pytest.raises(AssertionError):
        assert_same(Folding(coarse_in=2), Folding())


def _quantized(model, tmp_path, frames=None):
    path = tmp_path / "net.onnx"
    onnx.save(model, path)
    graph = frontend.load(path)
    frames = quant.synthetic_frames(graph, 4) if frames is None else frames[:4]
    return graph, frames


def _lstm_with_states(tmp_path):
    """zoo's stacked LSTMs, the first with non-zero initial states h0 and c0 (arrays)."""
    model, frames = zoo.lstm_kws()
    graph, frames = _quantized(model, tmp_path, frames)
    lstm = next(layer for layer in graph.layers if layer.op == "lstm")
    hidden = lstm.attrs["hidden"]
    lstm.attrs["h0"] = np.linspace(-0.5, 0.5, hidden)
    lstm.attrs["c0"] = np.linspace(0.25, -0.25, hidden)
    return graph, frames


#: Networks covering every op: conv (grouped, fused activations), fc, max/avg/global pooling,
#: add, concat, relu, clamp, leaky_relu, sigmoid, tanh, lstm with array states, QDQ formats
#: (a tuple holding an array among the attributes; format hints).
GRAPHS = {
    "residual": lambda tmp: _quantized(onnx_models.residual(), tmp),
    "pools": lambda tmp: _quantized(onnx_models.pools(), tmp),
    "mlp_sigmoid": lambda tmp: _quantized(onnx_models.mlp(), tmp),
    "mlp_tanh": lambda tmp: _quantized(onnx_models.mlp_tanh(), tmp),
    "depthwise_clamp": lambda tmp: _quantized(onnx_models.depthwise_separable(), tmp),
    "leaky_relu": lambda tmp: _quantized(onnx_models.nonsquare_kernel(), tmp),
    "reducemean_head": lambda tmp: _quantized(onnx_models.reducemean_head(), tmp),
    "qdq_conv": lambda tmp: _quantized(onnx_models.qdq_conv(), tmp),
    "lstm_states": _lstm_with_states,
}


def _record(graph, frames, plan=None):
    q = quant.quantize(graph, frames)
    return record.Record(
        source="net.onnx", bits=8, calibration=None,
        float_error={"max_abs": 0.125, "rel_rms": 0.01, "top1_agreement": 1.0}, graph=q,
        frames=frames, board="arty", clock_mhz=100.0,
        search={"objective": "throughput", "cap": 0.8, "seed": 0, "binding": "dsp"},
        plan=plan or {layer.name: Folding() for layer in q.layers})


@pytest.mark.parametrize("name", GRAPHS)
def test_graph_round_trip(name, tmp_path):
    graph, frames = GRAPHS[name](tmp_path)
    rec = _record(graph, frames)
    if name == "residual":          # a dict that would read as a tag, and the float -0.0
        rec.graph.layers[0].attrs["odd"] = {"$tuple": [(-0.0, None)]}
    record.write(tmp_path, rec)
    assert_same(record.read(tmp_path), rec, "record")
    assert_same(record.read_graph(tmp_path), rec.graph)
    stored = set(np.load(tmp_path / "graph.npz", allow_pickle=False).files)
    named = {f"layers.{k}.{key}" for k, layer in enumerate(rec.graph.layers)
             for key, value in (("weight", layer.weight), ("bias", layer.bias), *(
                 (f"wq.{f}", layer.wq) for f in ("frac", "weight", "bias"))) if value is not None}
    assert named <= stored and all(key.startswith("layers.") for key in stored)
    assert json.loads((tmp_path / "graph.json").read_text())["graph"]["$Graph"]["name"] == \
        rec.graph.name


def _distinct(cls):
    """An instance of the dataclass `cls` with every field unlike its default (nested
    dataclasses likewise)."""
    values = {}
    for k, f in enumerate(dataclasses.fields(cls)):
        default = (f.default if f.default is not dataclasses.MISSING
                   else f.default_factory() if f.default_factory is not dataclasses.MISSING
                   else 1)
        if dataclasses.is_dataclass(default):
            values[f.name] = _distinct(type(default))
        elif isinstance(default, bool):
            values[f.name] = not default
        else:
            values[f.name] = default + 2 + k
    return cls(**values)


def test_plan_round_trip_keeps_every_field(tmp_path):
    """Whatever `model.Folding` is (flat, or with nested dataclasses), every field survives."""
    graph, _ = _quantized(onnx_models.residual(), tmp_path)
    folding = _distinct(Folding)
    assert folding != Folding()
    plan = {layer.name: folding for layer in graph.layers}
    text = json.dumps(record.plan_to_json(graph, plan))
    assert_same(record.plan_from_json(graph, json.loads(text)), plan, "plan")


# -- refused: one sentence naming the file ----------------------------------------------------


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A design folder holding the record of `residual`."""
    folder = tmp_path_factory.mktemp("record")
    graph, frames = _quantized(onnx_models.residual(), folder)
    record.write(folder, _record(graph, frames))
    return folder


def _refused(folder, message, *, path=None):
    with pytest.raises(UserError) as error:
        record.read(path or folder)
    assert str(error.value) == message


def _copy(saved, tmp_path):
    folder = tmp_path / "design"
    shutil.copytree(saved, folder)
    return folder


def test_missing_record(saved, tmp_path):
    _refused(tmp_path, f"'{tmp_path}' holds no dnnhw build record (missing graph.json, "
             "graph.npz, plan.json, frames.npy)")
    _refused(tmp_path, f"'{tmp_path / 'nope.json'}': no such file or folder",
             path=tmp_path / "nope.json")
    folder = _copy(saved, tmp_path)
    (folder / "graph.npz").unlink()
    _refused(folder, f"'{folder}' holds no dnnhw build record (missing graph.npz)",
             path=folder / "plan.json")
    with pytest.raises(UserError, match=r"holds no dnnhw build record \(missing graph.npz\)$"):
        record.read_graph(folder)


def _edit(path, change):
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize("file, change, why", [
    ("graph.json", lambda d: d.update(record=2), "record version 2; this dnnhw reads version 1"),
    ("plan.json", lambda d: d.pop("record"),
     "record version null; this dnnhw reads version 1"),
    ("graph.json", lambda d: d.pop("quant"), "no 'quant'"),
    ("graph.json", lambda d: d["graph"]["$Graph"]["layers"][0].update({"$Layer": 3}),
     "'$Layer' holds 3, not the fields of a Layer"),
    ("graph.json", lambda d: d["graph"]["$Graph"]["shapes"].update(x={"$Shape": {"c": 1}}),
     "Shape.__init__() missing 2 required positional arguments: 'h' and 'w'"),
    ("graph.json", lambda d: d.update(graph={"$Pickle": {}}), "unknown type 'Pickle'"),
    ("graph.json", lambda d: d.update(graph={"$tuple": 1}), "'$tuple' holds 1, not a list"),
    ("graph.json", lambda d: d.update(graph=[]), "'graph' holds a list, not a Graph"),
    ("graph.json", lambda d: d["graph"]["$Graph"]["layers"][0]["$Layer"].update(
        weight={"$array": "nowhere"}), "graph.npz has no array 'nowhere'"),
    ("plan.json", lambda d: d.pop("board"), "no 'board'"),
])
def test_corrupt_json(saved, tmp_path, file, change, why):
    folder = _copy(saved, tmp_path)
    _edit(folder / file, change)
    _refused(folder, f"{folder / file}: not a dnnhw build record ({why})")


def test_corrupt_plan(saved, tmp_path):
    """A folding for other layers, with a field missing or more, or a value of the wrong type."""
    folder = _copy(saved, tmp_path)
    layers = [layer.name for layer in record.read_graph(saved).layers]
    fields = sorted(f.name for f in dataclasses.fields(Folding))
    plan = folder / "plan.json"
    original = plan.read_text()

    def refused(change, why):
        plan.write_text(original)
        _edit(plan, change)
        _refused(folder, f"{plan}: not a dnnhw build record ({why})")

    refused(lambda d: d["folding"].pop(layers[-1]),
            f"the folding is for layers {sorted(layers[:-1])}, the graph has {sorted(layers)}")
    refused(lambda d: d["folding"][layers[0]].update(extra=1),
            f"'{layers[0]}': expected the fields {fields} of Folding, found "
            f"{sorted(fields + ['extra'])}")
    refused(lambda d: d["folding"][layers[0]].pop(fields[0]),
            f"'{layers[0]}': expected the fields {fields} of Folding, found {fields[1:]}")
    refused(lambda d: d["folding"][layers[0]].update(coarse_in=True),
            f"'{layers[0]}.coarse_in': expected a int, found true")


def test_corrupt_arrays(saved, tmp_path):
    folder = _copy(saved, tmp_path)
    npz = folder / "graph.npz"
    npz.write_bytes(npz.read_bytes()[:200])                # a truncated archive
    _refused(folder, f"{npz}: not a dnnhw build record (not a .npz archive: File is not a zip "
             "file)")
    np.savez(npz, **{"layers.0.weight": np.array([object()])})
    _refused(folder, f"{npz}: not a dnnhw build record (Object arrays cannot be loaded when "
             "allow_pickle=False)")
    shutil.copy(saved / "graph.npz", npz)
    (folder / "frames.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(UserError, match=r"frames.npy: not a dnnhw build record \("):
        record.read(folder)


def test_unrecordable_values_are_named(tmp_path):
    graph, frames = _quantized(onnx_models.residual(), tmp_path)
    graph.layers[1].attrs["scale"] = np.array([object()])
    with pytest.raises(TypeError, match=r"^layers.1.attrs.scale: an array of Python objects "
                                        "cannot be recorded$"):
        record.graph_to_json(graph)
    graph.layers[1].attrs["scale"] = np.float32(2)
    with pytest.raises(TypeError, match=r"^layers.1.attrs.scale: a float32 cannot be recorded$"):
        record.graph_to_json(graph)
