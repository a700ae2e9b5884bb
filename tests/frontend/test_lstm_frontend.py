"""LSTM import and the fixed-point LSTM of the golden model.

PyTorch exports (both exporters) and hand-built ONNX LSTM nodes load into the layers and shapes
they should; the float path matches onnxruntime to 1e-5 relative RMS and the 16-bit golden model
stays within 2 % of it over whole outputs (sequences included); what the frontend cannot take it
refuses with a `UserError` naming the node. `golden.lstm_step` follows the rules its module
docstring states, and `quant` bounds the LSTM accumulator.
"""

import warnings

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from dnnhw import golden, ops, quant
from dnnhw.errors import UserError
from dnnhw.frontend import load, onnxruntime_outputs
from dnnhw.ir import Format, Graph, Layer, Shape, WeightQuant
from support import torch_models

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning",
                                        "ignore::UserWarning")

FLOAT_REL_RMS = 1e-5
FIXED16_REL_RMS = 0.02
FIXED8_REL_RMS = 0.10


def random_frames(frame_shape, count=8, seed=0):
    return np.random.default_rng(seed).standard_normal((count, *frame_shape)).astype(np.float32)


def errors(path, graph, frames):
    """(float, 16-bit, 8-bit) golden errors against onnxruntime, calibrating on `frames`."""
    reference = onnxruntime_outputs(path, graph, frames)
    float_out = golden.run(graph, frames, fixed=False)
    assert float_out.shape == reference.shape == (len(frames), *graph.output_frame_shape)
    fixed = {}
    for bits in (16, 8):
        q = quant.quantize(graph, frames, bits=bits)
        out = golden.run(q, frames)
        assert out.shape == reference.shape
        fixed[bits] = golden.float_error(reference, out)
    return golden.float_error(reference, float_out), fixed[16], fixed[8]


def assert_tracks_onnxruntime(path, graph, frames):
    float_err, err16, err8 = errors(path, graph, frames)
    assert float_err["rel_rms"] < FLOAT_REL_RMS, float_err
    assert err16["rel_rms"] <= FIXED16_REL_RMS, err16
    assert err8["rel_rms"] <= FIXED8_REL_RMS, err8
    return float_err, err16, err8


def lstm_layers(graph):
    return [layer for layer in graph.layers if layer.op == "lstm"]


# -- PyTorch exports ---------------------------------------------------------------------------

def _torch_nets():
    torch = pytest.importorskip("torch")
    nn = torch.nn

    class LastStep(nn.Module):
        """LSTM + Linear on the last step: y[:, -1] (batch_first) or y[-1] (time first)."""
        def __init__(self, batch_first):
            super().__init__()
            self.batch_first = batch_first
            self.lstm = nn.LSTM(12, 24, batch_first=batch_first)
            self.fc = nn.Linear(24, 5)

        def forward(self, x):
            y, _ = self.lstm(x)
            return self.fc(y[:, -1] if self.batch_first else y[-1])

    class TwoLayers(nn.Module):
        """num_layers=2, Linear on the last layer's final hidden state h_n[-1]."""
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(10, 20, num_layers=2, batch_first=True)
            self.fc = nn.Linear(20, 4)

        def forward(self, x):
            _, (h, _) = self.lstm(x)
            return self.fc(h[-1])

    class Sequence(nn.Module):
        """The whole output sequence is the model's output."""
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(8, 16, batch_first=True)

        def forward(self, x):
            return self.lstm(x)[0]

    class TimeDistributed(nn.Module):
        """A Linear applied to every step of the sequence."""
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(8, 16, batch_first=True)
            self.fc = nn.Linear(16, 6)

        def forward(self, x):
            return self.fc(self.lstm(x)[0])

    class ConvFront(nn.Module):
        """Conv1d on (1, C, L), transposed to (1, L, C) into a batch_first LSTM."""
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(4, 12, 3, padding=1)
            self.lstm = nn.LSTM(12, 16, batch_first=True)
            self.fc = nn.Linear(16, 3)

        def forward(self, x):
            y = torch.relu(self.conv(x)).transpose(1, 2)
            return self.fc(self.lstm(y)[0][:, -1])

    class ChannelsFirstInput(nn.Module):
        """The model input is (1, I, T), features first; transposed into the LSTM."""
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(8, 16, batch_first=True)
            self.fc = nn.Linear(16, 4)

        def forward(self, x):
            return self.fc(self.lstm(x.transpose(1, 2))[0][:, -1])

    def seeded(cls, *args):
        torch.manual_seed(0)
        return cls(*args).eval()

    # name: (module factory, input shape, expected (op, output IR shape, lstm "last") per layer,
    #        input_hwc, output_hwc)
    return torch, {
        "batch_first_last": (lambda: seeded(LastStep, True), (1, 24, 12),
                             [("lstm", (24, 1, 1), True), ("fc", (5, 1, 1), None)], True, False),
        "time_first_last": (lambda: seeded(LastStep, False), (24, 1, 12),
                            [("lstm", (24, 1, 1), True), ("fc", (5, 1, 1), None)], True, False),
        "two_layers_h_n": (lambda: seeded(TwoLayers), (1, 22, 10),
                           [("lstm", (20, 1, 22), False), ("lstm", (20, 1, 1), True),
                            ("fc", (4, 1, 1), None)], True, False),
        "sequence_output": (lambda: seeded(Sequence), (1, 20, 8),
                            [("lstm", (16, 1, 20), False)], True, True),
        "time_distributed": (lambda: seeded(TimeDistributed), (1, 20, 8),
                             [("lstm", (16, 1, 20), False), ("conv", (6, 1, 20), None)], True, True),
        "conv1d_transpose": (lambda: seeded(ConvFront), (1, 4, 26),
                             [("conv", (12, 1, 26), None), ("lstm", (16, 1, 1), True),
                              ("fc", (3, 1, 1), None)], False, False),
        "channels_first_input": (lambda: seeded(ChannelsFirstInput), (1, 8, 21),
                                 [("lstm", (16, 1, 1), True), ("fc", (4, 1, 1), None)], False, False),
    }


TORCH_CASES = ["batch_first_last", "time_first_last", "two_layers_h_n", "sequence_output",
               "time_distributed", "conv1d_transpose", "channels_first_input"]


@pytest.fixture(scope="module", params=[(name, dynamo) for name in TORCH_CASES
                                        for dynamo in (False, True)],
                ids=[f"{name}-{'dynamo' if dynamo else 'torchscript'}" for name in TORCH_CASES
                     for dynamo in (False, True)])
def exported(request, tmp_path_factory):
    """One export per (network, exporter): path, graph, module, frames, expectations."""
    name, dynamo = request.param
    torch, nets = _torch_nets()
    factory, input_shape, layers, input_hwc, output_hwc = nets[name]
    module = factory()
    path = tmp_path_factory.mktemp("lstm") / f"{name}.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch_models.export(module, input_shape, path, dynamo=dynamo,
                            opset=None if dynamo else 17)
    graph = load(path)
    frames = random_frames(graph.input_frame_shape)
    with torch.no_grad():
        torch_out = np.concatenate([module(torch.from_numpy(f.reshape(input_shape))).numpy()
                                    for f in frames])     # every output here is batch-first
    return dict(name=name, path=path, graph=graph, module=module, frames=frames,
                input_shape=input_shape, layers=layers, input_hwc=input_hwc,
                output_hwc=output_hwc, torch_out=torch_out.astype(np.float64))


def test_torch_layers_and_shapes(exported):
    graph = exported["graph"]
    got = [(layer.op, tuple(graph.shapes[layer.output]),
            layer.attrs["last"] if layer.op == "lstm" else None) for layer in graph.layers]
    assert got == exported["layers"]
    assert (graph.input_hwc, graph.output_hwc) == (exported["input_hwc"], exported["output_hwc"])
    input_shape = exported["input_shape"]
    assert tuple(graph.onnx_input_shape) == input_shape
    time_first = input_shape[0] != 1
    assert graph.input_frame_shape == ((input_shape[0], input_shape[2]) if time_first
                                       else input_shape[1:])
    for layer in lstm_layers(graph):
        hidden = layer.attrs["hidden"]
        n_in = graph.shapes[layer.inputs[0]].c
        assert layer.weight.shape == (4 * hidden, n_in + hidden)
        assert layer.bias.shape == (4 * hidden,)
        assert layer.attrs["h0"] is None and layer.attrs["c0"] is None   # PyTorch's zero states
        assert graph.shapes[layer.inputs[0]].h == 1
        assert ops.macs(graph, layer) == layer.weight.size * graph.in_shape(layer).w


def test_torch_weights_in_onnx_gate_order(exported):
    """[W R] rows are in ONNX gate order i, o, f, c; PyTorch stores i, f, g, o."""
    graph, module = exported["graph"], exported["module"]
    torch_gates = dict(zip("ifgo", range(4)))
    for index, lstm in enumerate(lstm_layers(graph)):
        hidden = lstm.attrs["hidden"]
        param = {name: getattr(module.lstm, f"{name}_l{index}").detach().numpy().astype(np.float64)
                 for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
        for k, gate in enumerate("iofg"):
            rows = slice(k * hidden, (k + 1) * hidden)
            src = slice(torch_gates[gate] * hidden, (torch_gates[gate] + 1) * hidden)
            np.testing.assert_allclose(
                lstm.weight[rows], np.concatenate([param["weight_ih"][src], param["weight_hh"][src]], 1),
                rtol=0, atol=1e-7)
            np.testing.assert_allclose(lstm.bias[rows], param["bias_ih"][src] + param["bias_hh"][src],
                                       rtol=0, atol=1e-6)


def test_torch_float_matches_onnxruntime_and_torch(exported):
    path, graph, frames = exported["path"], exported["graph"], exported["frames"]
    torch_out = exported["torch_out"]
    # a frame is PyTorch's output without its batch axis: (N,) vectors, (T, H) sequences
    assert torch_out.shape == (len(frames), *graph.output_frame_shape)
    reference = onnxruntime_outputs(path, graph, frames)
    assert reference.shape == torch_out.shape
    np.testing.assert_allclose(reference, torch_out, rtol=0, atol=1e-5)
    float_out = golden.run(graph, frames, fixed=False)
    assert golden.float_error(reference, float_out)["rel_rms"] < FLOAT_REL_RMS
    # the golden model's output layout is PyTorch's, without going through onnxruntime
    np.testing.assert_allclose(float_out, torch_out, rtol=0, atol=1e-5)
    if graph.output_hwc:
        # a sequence (H, 1, T) comes out time-major, (T, H), like PyTorch's y[0]
        c, h, w = graph.shapes[graph.output]
        assert h == 1 and graph.output_frame_shape == (w, c)
        y = np.arange(c * w, dtype=np.float64).reshape(c, 1, w)
        np.testing.assert_array_equal(golden.output_to_onnx(graph, y), y[:, 0, :].T)


def test_torch_fixed_tracks_onnxruntime(exported):
    frames = random_frames(exported["graph"].input_frame_shape, count=12, seed=3)
    assert_tracks_onnxruntime(exported["path"], exported["graph"], frames)


# -- hand-built ONNX LSTM nodes ----------------------------------------------------------------

def lstm_model(steps=20, n_in=8, hidden=16, *, layout=0, seed=0, output="Y", outputs=("Y", "Y_h"),
               h0=None, c0=None, sequence_lens=None, direction="forward", peephole=False,
               node_attrs=None, tail=(), output_shape=None, opset=17, weight_scale=1.0,
               extra_inits=()):
    """A model with one LSTM node "rnn" on input "x"; its outputs are named Y, Y_h, Y_c;
    `tail` nodes follow it (`extra_inits`: their constants, name → array); the graph output is
    `output` of shape `output_shape` (default: the LSTM output's shape)."""
    rng = np.random.default_rng(seed)
    dirs = 2 if direction == "bidirectional" else 1
    w = rng.normal(0, weight_scale / np.sqrt(n_in), (dirs, 4 * hidden, n_in))
    r = rng.normal(0, weight_scale / np.sqrt(hidden), (dirs, 4 * hidden, hidden))
    b = rng.normal(0, 0.3, (dirs, 8 * hidden))
    inits = [numpy_helper.from_array(a.astype(np.float32), n) for a, n in ((w, "W"), (r, "R"), (b, "B"))]
    inputs = ["x", "W", "R", "B", "", "", "", ""]
    if sequence_lens is not None:
        inits.append(numpy_helper.from_array(np.asarray(sequence_lens, np.int32), "lens"))
        inputs[4] = "lens"
    state_shape = (1, dirs, hidden) if layout else (dirs, 1, hidden)
    for index, key, value in ((5, "h0", h0), (6, "c0", c0)):
        if value is not None:
            inits.append(numpy_helper.from_array(np.asarray(value, np.float32).reshape(state_shape), key))
            inputs[index] = key
    if peephole:
        inits.append(numpy_helper.from_array(rng.normal(0, 0.1, (dirs, 3 * hidden)).astype(np.float32), "P"))
        inputs[7] = "P"
    inits += [numpy_helper.from_array(np.asarray(a, np.float32), n) for n, a in dict(extra_inits).items()]
    while not inputs[-1]:
        inputs.pop()
    attrs = {"hidden_size": hidden, "direction": direction, **(node_attrs or {})}
    if layout:
        attrs["layout"] = 1
    node = helper.make_node("LSTM", inputs, list(outputs), name="rnn", **attrs)
    x_shape = (1, steps, n_in) if layout else (steps, 1, n_in)
    shapes = {"Y": (1, steps, dirs, hidden) if layout else (steps, dirs, 1, hidden),
              "Y_h": state_shape, "Y_c": state_shape}
    graph = helper.make_graph(
        [node, *tail], "lstm", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, output_shape or shapes[output])],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def save(model, tmp_path, name="lstm.onnx"):
    path = tmp_path / name
    onnx.save(model, path)
    return path


def const(name, value, dtype=np.int64):
    return helper.make_node("Constant", [], [name], name=f"{name}_const",
                            value=numpy_helper.from_array(np.asarray(value, dtype), name))


_rng = np.random.default_rng(7)
H0 = np.linspace(-0.8, 0.7, 16)
C0 = np.linspace(1.5, -2.0, 16)
SECOND_LSTM = {"W2": _rng.normal(0, 0.4, (1, 24, 16)), "R2": _rng.normal(0, 0.4, (1, 24, 6))}
HEADS = {"k": np.linspace(-2, 2, 16), "fw": _rng.normal(0, 0.1, (3, 320)), "cw": _rng.normal(0, 0.3, (5, 16, 3))}
SQUEEZE = [const("ax", [1]), helper.make_node("Squeeze", ["Y", "ax"], ["s"], name="sq")]   # (T, 1, H)

# name: (model keyword arguments, expected layers as (op, LSTM "last" or None), output IR shape,
#        output_hwc)
L, LL = ("lstm", False), ("lstm", True)
HAND_CASES = {
    "layout1_sequence": (dict(layout=1), [L], (16, 1, 20), True),
    "layout0_sequence_4d": (dict(layout=0), [L], (16, 1, 20), True),
    "layout0_y_h": (dict(layout=0, output="Y_h"), [LL], (16, 1, 1), False),
    "layout1_y_h": (dict(layout=1, output="Y_h", steps=25), [LL], (16, 1, 1), False),
    "unnamed_y": (dict(outputs=("", "Y_h"), output="Y_h"), [LL], (16, 1, 1), False),
    "initial_states_sequence": (dict(h0=H0, c0=C0), [L], (16, 1, 20), True),
    "initial_states_layout1_y_h": (dict(layout=1, h0=H0, c0=C0, output="Y_h"), [LL], (16, 1, 1), False),
    "initial_c_only": (dict(c0=C0, output="Y_h"), [LL], (16, 1, 1), False),
    "zero_initial_states": (dict(h0=np.zeros(16), c0=np.zeros(16)), [L], (16, 1, 20), True),
    "sequence_lens_equal_T": (dict(sequence_lens=[20]), [L], (16, 1, 20), True),
    "explicit_default_activations": (
        dict(node_attrs={"activations": ["Sigmoid", "Tanh", "Tanh"]}, output="Y_h"), [LL], (16, 1, 1), False),
    "one_step_sequence": (dict(steps=1), [L], (16, 1, 1), True),
    "one_step_y_h": (dict(steps=1, layout=1, output="Y_h"), [LL], (16, 1, 1), False),
    "one_feature": (dict(n_in=1, hidden=4, steps=24), [L], (4, 1, 24), True),
    "large_weights": (dict(weight_scale=3.0, output="Y_h"), [LL], (16, 1, 1), False),
    "squeezed_sequence": (dict(tail=SQUEEZE, output="s", output_shape=(20, 1, 16)), [L], (16, 1, 20), True),
    "gather_last_negative": (dict(layout=1, tail=[const("i", -1), helper.make_node(
        "Gather", ["Y", "i"], ["g"], name="pick", axis=1)], output="g", output_shape=(1, 1, 16)),
        [LL], (16, 1, 1), False),
    "gather_last_positive": (dict(tail=[const("i", 19), helper.make_node(
        "Gather", ["Y", "i"], ["g"], name="pick", axis=0)], output="g", output_shape=(1, 1, 16)),
        [LL], (16, 1, 1), False),
    "slice_last": (dict(layout=1, tail=[const("st", [-1]), const("en", [2 ** 62]), const("ax", [1]),
                                        helper.make_node("Slice", ["Y", "st", "en", "ax"], ["s"], name="cut")],
                        output="s", output_shape=(1, 1, 1, 16)), [LL], (16, 1, 1), False),
    "stacked_lstms": (dict(tail=[*SQUEEZE, helper.make_node("LSTM", ["s", "W2", "R2"], ["Y2"], name="rnn2",
                                                            hidden_size=6)],
                           extra_inits=SECOND_LSTM, output="Y2", output_shape=(20, 1, 1, 6)),
                      [L, L], (6, 1, 20), True),
    # sequences through other layers: the channel axis is the last ONNX axis
    "per_feature_scale": (dict(tail=[*SQUEEZE, helper.make_node("Mul", ["s", "k"], ["out"], name="mul")],
                               extra_inits={"k": HEADS["k"]}, output="out", output_shape=(20, 1, 16)),
                          [L, ("conv", None)], (16, 1, 20), True),
    "residual_add": (dict(tail=[*SQUEEZE, helper.make_node("Relu", ["s"], ["r"], name="relu"),
                                helper.make_node("Add", ["s", "r"], ["out"], name="add")],
                          output="out", output_shape=(20, 1, 16)),
                     [L, ("relu", None), ("add", None)], (16, 1, 20), True),
    "sigmoid_head": (dict(tail=[*SQUEEZE, helper.make_node("Sigmoid", ["s"], ["out"], name="sig")],
                          output="out", output_shape=(20, 1, 16)), [L, ("sigmoid", None)], (16, 1, 20), True),
    "flattened_sequence_gemm": (
        dict(tail=[*SQUEEZE, const("flat", [1, -1]),
                   helper.make_node("Transpose", ["s"], ["bt"], name="to_batch_first", perm=[1, 0, 2]),
                   helper.make_node("Reshape", ["bt", "flat"], ["f"], name="rs"),
                   helper.make_node("Gemm", ["f", "fw"], ["out"], name="fc", transB=1)],
             extra_inits={"fw": HEADS["fw"]}, output="out", output_shape=(1, 3)),
        [L, ("fc", None)], (3, 1, 1), False),
    "sequence_to_conv1d": (
        dict(tail=[*SQUEEZE, helper.make_node("Transpose", ["s"], ["cf"], name="to_channels_first", perm=[1, 2, 0]),
                   helper.make_node("Conv", ["cf", "cw"], ["out"], name="conv", pads=[1, 1])],
             extra_inits={"cw": HEADS["cw"]}, output="out", output_shape=(1, 5, 20)),
        [L, ("conv", None)], (5, 1, 20), False),
}


def hand_model(name):
    return lstm_model(**HAND_CASES[name][0])


@pytest.fixture(scope="module")
def hand_built(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hand_lstm")
    cache = {}

    def get(name):
        if name not in cache:
            path = save(hand_model(name), folder, f"{name}.onnx")
            cache[name] = path, load(path)
        return cache[name]
    return get


@pytest.mark.parametrize("name", sorted(HAND_CASES))
def test_hand_built_layers(hand_built, name):
    _, graph = hand_built(name)
    kwargs, layers, out_shape, output_hwc = HAND_CASES[name]
    assert [(layer.op, layer.attrs["last"] if layer.op == "lstm" else None)
            for layer in graph.layers] == layers
    assert tuple(graph.shapes[graph.output]) == out_shape
    assert graph.output_hwc == output_hwc and graph.input_hwc
    steps, n_in = kwargs.get("steps", 20), kwargs.get("n_in", 8)
    assert tuple(graph.shapes[graph.input]) == (n_in, 1, steps)
    assert graph.input_frame_shape == (steps, n_in)
    for layer in lstm_layers(graph):
        assert ops.macs(graph, layer) == layer.weight.size * graph.in_shape(layer).w


@pytest.mark.parametrize("name", sorted(HAND_CASES))
def test_hand_built_tracks_onnxruntime(hand_built, name):
    path, graph = hand_built(name)
    frames = random_frames(graph.input_frame_shape, count=6, seed=1)
    assert_tracks_onnxruntime(path, graph, frames)


def test_initial_states_kept(hand_built):
    _, graph = hand_built("initial_states_sequence")
    lstm, = graph.layers
    np.testing.assert_allclose(lstm.attrs["h0"], H0.astype(np.float32), rtol=0, atol=0)
    np.testing.assert_allclose(lstm.attrs["c0"], C0.astype(np.float32), rtol=0, atol=0)
    _, graph = hand_built("initial_c_only")
    assert graph.layers[0].attrs["h0"] is None and graph.layers[0].attrs["c0"] is not None
    _, graph = hand_built("zero_initial_states")
    assert graph.layers[0].attrs["h0"] is None and graph.layers[0].attrs["c0"] is None


def test_initial_states_matter(hand_built):
    """The non-zero initial states change the output (so the comparison above tests them)."""
    path, graph = hand_built("initial_states_sequence")
    frames = random_frames(graph.input_frame_shape, count=2, seed=1)
    zero = graph.copy()
    zero.layers[0].attrs["h0"] = zero.layers[0].attrs["c0"] = None
    reference = onnxruntime_outputs(path, graph, frames)
    assert golden.float_error(reference, golden.run(zero, frames, fixed=False))["rel_rms"] > 0.05
    q = quant.quantize(graph, frames, bits=16)
    h, c = golden.lstm_initial(q.layers[0], 16)
    np.testing.assert_array_equal(h, golden.quantize(H0.astype(np.float32), Format(16, 15)))
    np.testing.assert_array_equal(c, golden.quantize(C0.astype(np.float32), Format(20, 15)))


def test_bias_is_wb_plus_rb(tmp_path):
    model = lstm_model(hidden=4, n_in=3, steps=5)
    b = numpy_helper.to_array(next(i for i in model.graph.initializer if i.name == "B"))
    lstm, = load(save(model, tmp_path)).layers
    np.testing.assert_allclose(lstm.bias, b[0, :16].astype(np.float64) + b[0, 16:], rtol=0, atol=1e-7)


def test_fixed_graph_is_lstm_step_iterated(hand_built):
    """run_fixed of an LSTM layer is lstm_initial, lstm_shifts and lstm_step over the steps."""
    path, graph = hand_built("initial_states_sequence")
    frames = random_frames(graph.input_frame_shape, count=3, seed=2)
    for bits in (8, 16):
        q = quant.quantize(graph, frames, bits=bits)
        lstm, = q.layers
        fmt_x = q.formats[q.input]
        for frame in frames:
            x = golden.quantize(golden.input_to_chw(q, frame), fmt_x)
            h, c = golden.lstm_initial(lstm, bits)
            shifts = golden.lstm_shifts(fmt_x, Format(bits, bits - 1), lstm.wq.frac[0])
            expect = []
            for t in range(x.shape[2]):
                h, c = golden.lstm_step(x[:, 0, t], h, c, lstm.wq, shifts, bits)
                expect.append(h)
            got = golden.run_fixed(q, x)[q.output]
            np.testing.assert_array_equal(got[:, 0, :], np.array(expect).T)


# -- refusals -----------------------------------------------------------------------------------

def _conv_chain(tmp_path, perm, after, out_shape):
    """(1, 3, 4, 5) → Conv 1×1 to 6 channels → Transpose(perm) → `after` nodes, output "out";
    constants "cw2" (6, 4, 1, 1) and "fw" (4, 120) for them."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(size=shape).astype(np.float32), name)
             for name, shape in (("cw", (6, 3, 1, 1)), ("cw2", (6, 4, 1, 1)), ("fw", (4, 120)))]
    nodes = [helper.make_node("Conv", ["x", "cw"], ["c"], name="conv"),
             helper.make_node("Transpose", ["c"], ["t"], name="tr", perm=perm), *after]
    graph = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, (1, 3, 4, 5))],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, out_shape)],
                              initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return save(model, tmp_path)


REFUSALS = {
    "bidirectional": (dict(direction="bidirectional", output="Y_h"), "rnn", r"direction 'bidirectional'"),
    "reverse": (dict(direction="reverse", output="Y_h"), "rnn", r"direction 'reverse'"),
    "peephole": (dict(peephole=True, output="Y_h"), "rnn", r"peephole"),
    "clip": (dict(node_attrs={"clip": 3.0}, output="Y_h"), "rnn", r"clip"),
    "input_forget": (dict(node_attrs={"input_forget": 1}, output="Y_h"), "rnn", r"input_forget"),
    "activations": (dict(node_attrs={"activations": ["Sigmoid", "Tanh", "Relu"]}, output="Y_h"),
                    "rnn", r"activations"),
    "hard_sigmoid": (dict(node_attrs={"activations": ["HardSigmoid", "Tanh", "Tanh"]}, output="Y_h"),
                     "rnn", r"activations"),
    "sequence_lens_short": (dict(sequence_lens=[12], output="Y_h"), "rnn", r"sequence_lens \[12(\.0)?\] differ from the 20 steps"),
    "y_c_read": (dict(outputs=("Y", "Y_h", "Y_c"), output="sum",
                      tail=[helper.make_node("Add", ["Y_h", "Y_c"], ["sum"], name="add")],
                      output_shape=(1, 1, 16)), "rnn", r"Y_c"),
    "gather_middle_step": (dict(layout=1, tail=[const("i", 5), helper.make_node(
        "Gather", ["Y", "i"], ["g"], name="pick", axis=1)], output="g", output_shape=(1, 1, 16)),
        "pick", r"time step 5 of 20"),
    "gather_hidden_feature": (dict(layout=1, tail=[const("i", 3), helper.make_node(
        "Gather", ["Y", "i"], ["g"], name="pick", axis=3)], output="g", output_shape=(1, 20, 1)),
        "pick", r"axis 3"),
    "slice_two_steps": (dict(layout=1, tail=[const("st", [-2]), const("en", [2 ** 62]), const("ax", [1]),
                                             helper.make_node("Slice", ["Y", "st", "en", "ax"], ["s"], name="cut")],
                             output="s", output_shape=(1, 2, 1, 16)), "cut", r"Slice"),
    # h_n[0] + h_n[1] of two stacked LSTMs: the first one's sequence feeds the second and its
    # last step is read too
    "last_step_and_sequence_read": (
        dict(output="sum", output_shape=(1, 1, 16),
             extra_inits={"W3": np.full((1, 64, 16), 0.1), "R3": np.full((1, 64, 16), 0.1)},
             tail=[const("ax", [1]), helper.make_node("Squeeze", ["Y", "ax"], ["s"], name="sq"),
                   helper.make_node("LSTM", ["s", "W3", "R3"], ["", "Y_h3"], name="rnn3", hidden_size=16),
                   helper.make_node("Add", ["Y_h", "Y_h3"], ["sum"], name="add")]),
        "rnn.Y_h", r"nothing else reads"),
}


@pytest.mark.parametrize("name", sorted(REFUSALS))
def test_refused_lstm(tmp_path, name):
    kwargs, node_name, pattern = REFUSALS[name]
    path = save(lstm_model(**kwargs), tmp_path)
    with pytest.raises(UserError, match=pattern) as info:
        load(path)
    if node_name:
        assert f"'{node_name}'" in str(info.value)


def test_y_c_as_model_output_refused(tmp_path):
    path = save(lstm_model(outputs=("Y", "Y_h", "Y_c"), output="Y_c"), tmp_path)
    with pytest.raises(UserError, match=r"Y_c") as info:
        load(path)
    assert "'rnn'" in str(info.value)


def test_time_first_sequence_squeezed_to_2d_output(tmp_path):
    model = lstm_model(tail=[const("ax", [1, 2]), helper.make_node("Squeeze", ["Y", "ax"], ["s"], name="sq")],
                       output="s", output_shape=(20, 16))
    path = save(model, tmp_path)
    graph = load(path)
    frames = random_frames(graph.input_frame_shape, count=2)
    out = golden.run(graph, frames, fixed=False)
    assert out.shape == (2, 20, 16)
    np.testing.assert_allclose(out, onnxruntime_outputs(path, graph, frames), rtol=0, atol=1e-5)


def test_symbolic_time_first_length_refused(tmp_path):
    model = lstm_model(output="Y_h")
    steps = model.graph.input[0].type.tensor_type.shape.dim[0]
    steps.Clear()
    steps.dim_param = "T"
    path = save(model, tmp_path)
    with pytest.raises(UserError, match=r"dynamic sequence length"):
        load(path)


def test_symbolic_batch_first_length_refused(tmp_path):
    model = lstm_model(layout=1, output="Y_h")
    steps = model.graph.input[0].type.tensor_type.shape.dim[1]
    steps.Clear()
    steps.dim_param = "T"
    with pytest.raises(UserError, match=r"dynamic shape"):
        load(save(model, tmp_path))


def test_time_first_input_without_lstm_refused(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, (5, 1, 8))
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, (5, 1, 8))
    model = helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="r")], "g", [x], [y]),
                              opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    with pytest.raises(UserError, match=r"batch size 5"):
        load(save(model, tmp_path))


def test_channels_first_signal_into_lstm_refused(tmp_path):
    """A Conv1d's (1, C, L) output fed to a layout=1 LSTM as if it were (1, T, I): T = C and
    I = L, the data is not time-major; refused rather than silently transposed."""
    rng = np.random.default_rng(0)
    steps, n_in, hidden = 6, 10, 5
    inits = [numpy_helper.from_array(rng.normal(size=(steps, 2, 1)).astype(np.float32), "cw"),
             numpy_helper.from_array(rng.normal(size=(1, 4 * hidden, n_in)).astype(np.float32), "W"),
             numpy_helper.from_array(rng.normal(size=(1, 4 * hidden, hidden)).astype(np.float32), "R")]
    nodes = [helper.make_node("Conv", ["x", "cw"], ["c"], name="conv"),
             helper.make_node("LSTM", ["c", "W", "R"], ["", "Y_h"], name="rnn", hidden_size=hidden, layout=1)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, (1, 2, n_in))],
                              [helper.make_tensor_value_info("Y_h", TensorProto.FLOAT, (1, 1, hidden))],
                              initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    with pytest.raises(UserError, match=r"not a sequence") as info:
        load(save(model, tmp_path))
    assert "'rnn'" in str(info.value)


def test_transpose_reordering_a_map_refused(tmp_path):
    path = _conv_chain(tmp_path, (0, 1, 3, 2), [helper.make_node("Relu", ["t"], ["out"], name="act")],
                       (1, 6, 5, 4))
    with pytest.raises(UserError, match=r"perm \[0, 1, 3, 2\].*reorders") as info:
        load(path)
    assert "'tr'" in str(info.value)


def test_channels_last_map_into_conv_refused(tmp_path):
    """(1, C, H, W) → perm (0, 2, 3, 1) is a channels-last view; a Conv cannot read it."""
    path = _conv_chain(tmp_path, (0, 2, 3, 1), [helper.make_node("Conv", ["t", "cw2"], ["out"], name="conv2")],
                       (1, 6, 5, 6))
    with pytest.raises(UserError, match=r"channels-last") as info:
        load(path)
    assert "'conv2'" in str(info.value)


def test_channels_last_map_flattened_into_gemm(tmp_path):
    """A TF-style head: Conv → Transpose to NHWC → Flatten → Gemm; the fc weights already
    follow the stream order, and the float path matches onnxruntime."""
    path = _conv_chain(tmp_path, (0, 2, 3, 1), [
        helper.make_node("Flatten", ["t"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "fw"], ["out"], name="fc", transB=1)], (1, 4))
    graph = load(path)
    assert [layer.op for layer in graph.layers] == ["conv", "fc"]
    frames = random_frames(graph.input_frame_shape, count=3)
    reference = onnxruntime_outputs(path, graph, frames)
    assert golden.float_error(reference, golden.run(graph, frames, fixed=False))["rel_rms"] < FLOAT_REL_RMS


def test_channels_last_map_output(tmp_path):
    """Conv → Transpose to NHWC as the model output: output_hwc, and golden gives NHWC."""
    path = _conv_chain(tmp_path, (0, 2, 3, 1), [helper.make_node("Relu", ["t"], ["out"], name="act")],
                       (1, 4, 5, 6))
    graph = load(path)
    assert graph.output_hwc and not graph.input_hwc
    frames = random_frames(graph.input_frame_shape, count=3)
    reference = onnxruntime_outputs(path, graph, frames)
    assert reference.shape == (3, 4, 5, 6)
    assert golden.float_error(reference, golden.run(graph, frames, fixed=False))["rel_rms"] < FLOAT_REL_RMS


# -- quantization ------------------------------------------------------------------------------

def lstm_graph(weight, bias, hidden, steps=4):
    n_in = weight.shape[1] - hidden
    layer = Layer("lstm", "lstm", ["x"], "y", attrs={"hidden": hidden, "last": False, "h0": None, "c0": None},
                  weight=np.asarray(weight, np.float64), bias=np.asarray(bias, np.float64))
    return Graph("g", "x", "y", {"x": Shape(n_in, 1, steps), "y": Shape(hidden, 1, steps)}, [layer],
                 (1, steps, n_in), (1, steps, hidden), input_hwc=True, output_hwc=True)


@pytest.mark.parametrize("bits", [6, 8, 12, 16])
def test_lstm_output_format(hand_built, bits):
    path, graph = hand_built("layout1_sequence")
    frames = random_frames(graph.input_frame_shape, count=2) * 5
    q = quant.quantize(graph, frames, bits=bits)
    assert q.formats[q.output] == Format(bits, bits - 1)
    fmt_g, fmt_c, fmt_z = golden.lstm_formats(bits)
    assert fmt_g == Format(bits, bits - 1) and fmt_c == Format(bits + golden.LSTM_CELL_INT, bits - 1)
    assert fmt_z.frac == bits + 3


def test_lstm_layer_bits_override(hand_built):
    path, graph = hand_built("stacked_lstms")
    frames = random_frames(graph.input_frame_shape, count=2)
    q = quant.quantize(graph, frames, bits=8, layer_bits={"rnn2": 12})
    first, second = q.layers
    assert q.formats[first.output] == Format(8, 7) and q.formats[second.output] == Format(12, 11)
    assert first.wq.bits == 8 and second.wq.bits == 12
    reference = onnxruntime_outputs(path, graph, frames)
    assert golden.float_error(reference, golden.run(q, frames))["rel_rms"] <= FIXED8_REL_RMS


@pytest.mark.parametrize("bits", [8, 16])
@pytest.mark.parametrize("x_peak", [4.0, 0.2])
def test_acc_bits_bounds_the_worst_case(bits, x_peak):
    """Every weight at ±max, every input and hidden value at the end of its range with the
    weight's sign: the exact accumulator fits in acc_bits signed bits, with little to spare."""
    hidden, n_in = 5, 7
    rng = np.random.default_rng(bits)
    top = 1 - 2.0 ** -(bits - 1)                 # quantizes to exactly 2**(bits-1) - 1
    weight = top * rng.choice([-1.0, 1.0], (4 * hidden, n_in + hidden))
    bias = rng.choice([-1.0, 1.0], 4 * hidden) * 0.9
    graph = lstm_graph(weight, bias, hidden)
    frames = np.full((1, 4, n_in), x_peak)
    q = quant.quantize(graph, frames, bits=bits)
    wq, fmt_x, fmt_h = q.layers[0].wq, q.formats["x"], q.formats["y"]
    assert np.all(np.abs(wq.weight) == (1 << (bits - 1)) - 1)
    assert np.all(wq.frac == wq.frac[0])
    dx, dh, z_shift = golden.lstm_shifts(fmt_x, fmt_h, wq.frac[0])
    scale = max(fmt_x.frac, fmt_h.frac)
    assert (dx, dh) == (scale - fmt_x.frac, scale - fmt_h.frac) and min(dx, dh) == 0
    assert z_shift == scale + wq.frac[0] - (bits + 3)
    np.testing.assert_array_equal(wq.bias, golden.round_half_up(bias * 2.0 ** (scale + wq.frac[0])))
    x_max, h_max = 1 << (fmt_x.bits - 1), 1 << (bits - 1)     # magnitudes of the most negative values
    worst = 0
    for row, b in zip(wq.weight.tolist(), wq.bias.tolist()):
        sign = 1 if b >= 0 else -1
        acc = b + sum(abs(w) * x_max for w in row[:n_in]) * sign * (1 << dx) \
                + sum(abs(w) * h_max for w in row[n_in:]) * sign * (1 << dh)
        worst = max(worst, abs(acc))
    assert -(1 << (wq.acc_bits - 1)) <= -worst and worst <= (1 << (wq.acc_bits - 1)) - 1
    assert worst.bit_length() + 1 >= wq.acc_bits - 1          # not wastefully wide
    # and lstm_step runs on those extremes without overflowing its integers
    x = np.array([-x_max if w < 0 else x_max - 1 for w in wq.weight[0, :n_in]])
    h = np.array([-h_max if w < 0 else h_max - 1 for w in wq.weight[0, n_in:]])
    h2, c2 = golden.lstm_step(x, h, np.zeros(hidden, np.int64), wq, (dx, dh, z_shift), bits)
    fmt_g, fmt_c, _ = golden.lstm_formats(bits)
    assert np.all((fmt_g.min <= h2) & (h2 <= fmt_g.max)) and np.all((fmt_c.min <= c2) & (c2 <= fmt_c.max))


def test_lstm_weights_share_one_format():
    rng = np.random.default_rng(0)
    hidden, n_in = 3, 2
    weight = rng.normal(size=(4 * hidden, n_in + hidden)) * np.linspace(0.01, 2, 4 * hidden)[:, None]
    q = quant.quantize(lstm_graph(weight, np.zeros(4 * hidden), hidden), np.ones((1, 4, n_in)), bits=8)
    wq = q.layers[0].wq
    assert np.all(wq.frac == quant.frac_for(np.abs(weight).max(), 8))
    np.testing.assert_array_equal(wq.weight, golden.saturate(golden.round_half_up(weight * 2.0 ** wq.frac[0]), 8))


# -- lstm_step by hand ---------------------------------------------------------------------------

def rsh(v, s):
    """round_shift on Python integers, written out: (v + 2**(s-1)) >> s."""
    return (v + (1 << (s - 1))) >> s if s > 0 else v << -s


@pytest.mark.parametrize("bits", [8, 16])
@pytest.mark.parametrize("c0", [0, 1, -1, 3, -3, 100, -101, 7 << 12])
def test_lstm_step_zero_weights(bits, c0):
    """Zero weights and bias: every gate pre-activation is 0, so i = o = f = sigmoid(0) = 0.5 =
    2**(b-2) in G and g = tanh(0) = 0; c' = round(c/2) (half up), h' = round(o·tanh(c'))."""
    fmt_g, fmt_c, fmt_z = golden.lstm_formats(bits)
    c0 = int(np.clip(c0, fmt_c.min, fmt_c.max))
    wq = WeightQuant(bits=bits, frac=np.full(4, bits - 2), weight=np.zeros((4, 2), np.int64),
                     bias=np.zeros(4, np.int64), acc_bits=2 * bits + 4)
    shifts = golden.lstm_shifts(Format(bits, bits - 3), fmt_g, bits - 2)
    half = 1 << (bits - 2)
    assert int(golden.nonlinear("sigmoid", np.array([0]), fmt_z, fmt_g)[0]) == half
    assert int(golden.nonlinear("tanh", np.array([0]), fmt_z, fmt_g)[0]) == 0
    x, h = np.array([(1 << (bits - 2)) - 1]), np.array([-(1 << (bits - 3))])
    h1, c1 = golden.lstm_step(x, h, np.array([c0]), wq, shifts, bits)
    expect_c = rsh(half * c0, bits - 1)
    assert expect_c == (c0 + 1) // 2                                 # c/2 rounded half up
    assert int(c1[0]) == expect_c
    tanh_c = int(golden.nonlinear("tanh", np.array([expect_c]), fmt_c, fmt_g)[0])
    assert int(h1[0]) == rsh(half * tanh_c, bits - 1)
    # and the value is 0.5·tanh(c') to within the table's interpolation error
    c_value = expect_c * 2.0 ** -fmt_c.frac
    assert abs(int(h1[0]) * 2.0 ** -fmt_g.frac - 0.5 * np.tanh(c_value)) <= 2.0 ** -min(bits - 1, 11)


def reference_step(x, h, c, wq, shifts, bits):
    """The docstring's rules written out in Python integers, gate by gate."""
    fmt_g, fmt_c, fmt_z = golden.lstm_formats(bits)
    dx, dh, z_shift = shifts
    hidden = len(h)
    n_in = len(x)
    acc = [int(wq.bias[j]) + (sum(int(wq.weight[j, k]) * int(x[k]) for k in range(n_in)) << dx)
           + (sum(int(wq.weight[j, n_in + k]) * int(h[k]) for k in range(hidden)) << dh)
           for j in range(4 * hidden)]
    z = [rsh(a, z_shift) for a in acc]

    def act(kind, v, fmt):
        return int(golden.nonlinear(kind, np.array([v]), fmt, fmt_g)[0])
    h_new, c_new = [], []
    for k in range(hidden):
        i, o, f = (act("sigmoid", z[g * hidden + k], fmt_z) for g in range(3))
        g = act("tanh", z[3 * hidden + k], fmt_z)
        cell = rsh(f * int(c[k]) + i * g, bits - 1)
        cell = max(fmt_c.min, min(fmt_c.max, cell))
        h_new.append(rsh(o * act("tanh", cell, fmt_c), bits - 1))
        c_new.append(cell)
    return h_new, c_new


@pytest.mark.parametrize("bits", [8, 12, 16])
def test_lstm_step_follows_the_documented_rules(bits):
    """Random integer weights, inputs and states, several steps: lstm_step equals the rules
    written out, and is close to the float LSTM on the dequantized values."""
    rng = np.random.default_rng(bits)
    hidden, n_in = 3, 2
    fmt_g, fmt_c, _ = golden.lstm_formats(bits)
    fmt_x = Format(bits, bits - 3)
    frac_w = bits - 2
    weight = rng.normal(0, 0.8, (4 * hidden, n_in + hidden))
    bias = rng.normal(0, 0.5, 4 * hidden)
    scale = max(fmt_x.frac, fmt_g.frac) + frac_w
    wq = WeightQuant(bits=bits, frac=np.full(4 * hidden, frac_w),
                     weight=golden.quantize(weight, Format(bits, frac_w)),
                     bias=golden.round_half_up(bias * 2.0 ** scale), acc_bits=3 * bits)
    shifts = golden.lstm_shifts(fmt_x, fmt_g, frac_w)
    assert shifts == (2, 0, max(fmt_x.frac, fmt_g.frac) + frac_w - (bits + 3))
    h = golden.quantize(rng.uniform(-0.9, 0.9, hidden), fmt_g)
    c = golden.quantize(rng.uniform(-3, 3, hidden), fmt_c)
    hf, cf = h * 2.0 ** -fmt_g.frac, c * 2.0 ** -fmt_c.frac
    w_deq = wq.weight * 2.0 ** -frac_w
    sig = lambda v: 1 / (1 + np.exp(-v))
    for _ in range(6):
        x = golden.quantize(rng.uniform(-3, 3, n_in), fmt_x)
        h_ref, c_ref = reference_step(x, h, c, wq, shifts, bits)
        h, c = golden.lstm_step(x, h, c, wq, shifts, bits)
        assert h.tolist() == h_ref and c.tolist() == c_ref
        z = (w_deq @ np.concatenate([x * 2.0 ** -fmt_x.frac, hf]) + bias).reshape(4, hidden)
        cf = sig(z[2]) * cf + sig(z[0]) * np.tanh(z[3])
        hf = sig(z[1]) * np.tanh(cf)
        tol = 0.05 if bits == 8 else 0.01
        np.testing.assert_allclose(h * 2.0 ** -fmt_g.frac, hf, rtol=0, atol=tol)
        np.testing.assert_allclose(c * 2.0 ** -fmt_c.frac, cf, rtol=0, atol=tol)
        hf, cf = h * 2.0 ** -fmt_g.frac, c * 2.0 ** -fmt_c.frac    # follow the integer path


def test_lstm_step_cell_saturates():
    """A cell state pushed past ±2**LSTM_CELL_INT saturates to the cell format's ends."""
    bits = 8
    fmt_g, fmt_c, _ = golden.lstm_formats(bits)
    # f ≈ 1, i ≈ 1, g ≈ 1: c grows by ~1 per step from near the top of its range
    wq = WeightQuant(bits=bits, frac=np.full(4, 0), weight=np.zeros((4, 2), np.int64),
                     bias=np.array([1 << 20] * 4), acc_bits=32)
    shifts = golden.lstm_shifts(fmt_g, fmt_g, 0)
    c = np.array([fmt_c.max - 10])
    h = np.zeros(1, np.int64)
    for _ in range(3):
        h, c = golden.lstm_step(np.zeros(1, np.int64), h, c, wq, shifts, bits)
    assert int(c[0]) == fmt_c.max
    wq.bias = -wq.bias
    wq.bias[3] = -(1 << 20)                 # g ≈ -1, i ≈ 0 → c decays; make i ≈ 1 instead
    wq.bias[0] = wq.bias[2] = 1 << 20
    c = np.array([fmt_c.min + 10])
    for _ in range(3):
        h, c = golden.lstm_step(np.zeros(1, np.int64), h, c, wq, shifts, bits)
    assert int(c[0]) == fmt_c.min
