"""The build record: what a build decided before it generated hardware, as data, so that
`dnnhw build --plan` can rebuild the same Verilog and `verify` and `run` can read the graph.

A build's design/ folder holds the record (`write`, `read`):

    graph.json   {"record", "source", "quant", "graph"}: the ONNX file the build read; the
                 quantization's --bits, --calibration file (null: synthetic frames), its
                 --layer-bits and what --layer-bits auto measured (null when not asked), and
                 the fixed-point model's error against onnxruntime; the quantized graph, every field
                 of `ir.Graph` and of the `ir` dataclasses it holds
    graph.npz    the graph's arrays (float and integer weights, biases, fracs, array-valued
                 attributes), each named by its place in graph.json: "layers.0.wq.weight"
    plan.json    {"record", "board", "clock_mhz", "search", "folding"}: the board and clock the
                 design was planned for, the DSE's own facts (`dse.Exploration`'s fields but
                 those the plan decides), and every layer's folding, field by field
    frames.npy   the calibration frames

In graph.json a value of an `ir` dataclass is {"$Name": {field: value, ...}}, a tuple
{"$tuple": [...]}, an array {"$array": KEY}, a dict whose only key starts with "$" (which would
read as one of these) {"$dict": {...}}; other values are JSON's own. Nothing is pickled: the
arrays load with `allow_pickle=False`.
"""

import dataclasses
import json
import pathlib
import zipfile
from dataclasses import dataclass, field

import numpy as np

from . import ir
from .errors import UserError
from .folding import Folding


__all__ = ["RECORD", "FILES", "Record", "write", "read", "read_graph", "graph_to_json",
           "graph_from_json", "plan_to_json", "plan_from_json"]

#: The version of the record's layout, in both JSON files' "record" key.
RECORD = 1

#: The record's files in a design folder.
FILES = ("graph.json", "graph.npz", "plan.json", "frames.npy")

#: The dataclasses a graph holds, by name.
_CLASSES = {cls.__name__: cls for cls in vars(ir).values()
            if isinstance(cls, type) and dataclasses.is_dataclass(cls)
            and cls.__module__ == ir.__name__}


@dataclass
class Record:
    """A build's decisions.

    Attributes
    ----------
    source : str
        The ONNX file the build read.
    bits : int
        --bits of the quantization.
    calibration : str or None
        The --calibration file; None when the formats come from synthetic frames.
    float_error : dict
        `golden.float_error` of the quantized graph against onnxruntime.
    graph : ir.Graph
        The quantized graph.
    frames : ndarray
        The calibration frames.
    board : str
        The board's name.
    clock_mhz : float
    search : dict
        The DSE's facts that the plan does not decide (`dse.Exploration`'s fields but `plan`,
        `perf`, `resources`).
    plan : dict
        Layer name → `Folding`, in the graph's layer order.
    layer_bits : dict
        --layer-bits of the quantization (layer name → bits), or what --layer-bits auto chose.
    precision : dict or None
        `precision.Choice.summary` when --layer-bits auto chose the widths.
    """
    source: str
    bits: int
    calibration: str | None
    float_error: dict
    graph: ir.Graph
    frames: np.ndarray
    board: str
    clock_mhz: float
    search: dict
    plan: dict
    layer_bits: dict = field(default_factory=dict)
    precision: dict | None = None


class _Corrupt(ValueError):
    """A record file that does not hold what it should; the message says what."""


def write(design, rec):
    """Write `rec` into the folder `design` (which must exist) as the files of `FILES`.

    Raises
    ------
    TypeError
        If the graph holds a value the record cannot hold as data (the message names where).
    """
    design = pathlib.Path(design)
    structure, arrays = graph_to_json(rec.graph)
    graph = {"record": RECORD, "source": rec.source,
             "quant": {"bits": rec.bits, "calibration": rec.calibration,
                       "float_error": rec.float_error, "layer_bits": rec.layer_bits,
                       "precision": rec.precision},
             "graph": structure}
    plan = {"record": RECORD, "board": rec.board, "clock_mhz": rec.clock_mhz,
            "search": rec.search, "folding": plan_to_json(rec.graph, rec.plan)}
    (design / "graph.json").write_text(json.dumps(graph, indent=1))
    np.savez(design / "graph.npz", **arrays)
    (design / "plan.json").write_text(json.dumps(plan, indent=1))
    np.save(design / "frames.npy", rec.frames, allow_pickle=False)


def read(path):
    """The `Record` at `path`: a design folder, or a plan file (plan.json, or a copy of it
    under another name) whose folder holds the rest of the record.

    Raises
    ------
    UserError
        If a file of the record is missing or does not read as one.
    """
    path = pathlib.Path(path)
    if not path.exists():
        raise UserError(f"'{path}': no such file or folder")
    plan_file = path / "plan.json" if path.is_dir() else path
    design = plan_file.parent
    _require(design, [plan_file.name if name == "plan.json" else name for name in FILES])
    graph, quant, source = _graph_file(design)
    with _reading(design / "graph.json"):
        bits, calibration, error = quant["bits"], quant["calibration"], quant["float_error"]
        layer_bits, precision = quant.get("layer_bits", {}), quant.get("precision")
    plan = _json(plan_file)
    with _reading(plan_file):
        folding = plan_from_json(graph, plan["folding"])
        board, clock, search = plan["board"], plan["clock_mhz"], plan["search"]
    with _reading(design / "frames.npy"):
        frames = _npy(design / "frames.npy")
    return Record(source, bits, calibration, error, graph, frames, board, clock, search, folding,
                  layer_bits, precision)


def read_graph(design):
    """The quantized `ir.Graph` of the record in the folder `design`.

    Raises
    ------
    UserError
        If graph.json or graph.npz is missing or does not read as a record.
    """
    design = pathlib.Path(design)
    _require(design, FILES[:2])
    return _graph_file(design)[0]


def _require(design, names):
    missing = [name for name in names if not (design / name).is_file()]
    if missing:
        raise UserError(f"'{design}' holds no dnnhw build record (missing {', '.join(missing)})")


class _reading:
    """A context in which the errors of data missing or of the wrong kind (`_Corrupt` is a
    ValueError) become the UserError "FILE: not a dnnhw build record (WHY)"."""

    def __init__(self, path):
        self.path = path

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        if kind is not None and issubclass(kind, (KeyError, TypeError, ValueError,
                                                  AttributeError)):
            why = f"no {error}" if kind is KeyError else str(error)
            raise UserError(f"{self.path}: not a dnnhw build record ({why})") from None


def _json(path):
    """A record's JSON file, of this record version."""
    with _reading(path):
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise _Corrupt(f"not JSON: {error}") from None
        version = data.get("record") if isinstance(data, dict) else None
        if version != RECORD:
            raise _Corrupt(f"record version {json.dumps(version)}; this dnnhw reads version "
                           f"{RECORD}")
    return data


def _npy(path):
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, EOFError) as error:
        raise _Corrupt(f"not a .npy array: {error}") from None


def _graph_file(design):
    """(graph, quant dict, source) of graph.json and graph.npz in `design`."""
    data = _json(design / "graph.json")
    npz = design / "graph.npz"
    with _reading(npz):
        try:
            with np.load(npz, allow_pickle=False) as stored:
                arrays = {key: stored[key] for key in stored.files}
        except (OSError, EOFError, zipfile.BadZipFile) as error:
            raise _Corrupt(f"not a .npz archive: {error}") from None
    with _reading(design / "graph.json"):
        graph = graph_from_json(data["graph"], arrays)
        if not isinstance(graph, ir.Graph):
            raise _Corrupt(f"'graph' holds a {type(graph).__name__}, not a Graph")
        return graph, data["quant"], data["source"]


# -- the graph ------------------------------------------------------------------------------------


def graph_to_json(graph):
    """(structure, arrays) of `graph`: a JSON-able value as the module docstring describes, and
    the arrays it names, by name.

    Raises
    ------
    TypeError
        For a value the record cannot hold as data: an array of Python objects, a dict with a
        key that is not a string, or a type other than JSON's own, tuples, arrays and `ir`'s
        dataclasses (the message names where in the graph it is).
    """
    arrays = {}
    return _encode(graph, "", arrays), arrays


def _encode(value, key, arrays):
    where = key or "the graph"
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise TypeError(f"{where}: an array of Python objects cannot be recorded")
        arrays[key] = value
        return {"$array": key}
    if _CLASSES.get(type(value).__name__) is type(value):
        return {f"${type(value).__name__}": {
            f.name: _encode(getattr(value, f.name), _join(key, f.name), arrays)
            for f in dataclasses.fields(value)}}
    if isinstance(value, (list, tuple)):
        items = [_encode(v, _join(key, str(i)), arrays) for i, v in enumerate(value)]
        return items if type(value) is list else {"$tuple": items}
    if type(value) is dict:
        if not all(type(k) is str for k in value):
            raise TypeError(f"{where}: a dict with keys other than strings cannot be recorded")
        items = {k: _encode(v, _join(key, k), arrays) for k, v in value.items()}
        return {"$dict": items} if len(items) == 1 and next(iter(items)).startswith("$") else items
    if value is None or type(value) in (bool, int, float, str):
        return value
    raise TypeError(f"{where}: a {type(value).__name__} cannot be recorded")


def _join(key, name):
    return f"{key}.{name}" if key else name


def graph_from_json(structure, arrays):
    """The value `graph_to_json` gave as (structure, arrays).

    Raises
    ------
    ValueError
        If `structure` names an array `arrays` lacks, or a type that is not one of `ir`'s
        dataclasses; TypeError if a dataclass's fields are not the ones it has.
    """
    if isinstance(structure, list):
        return [graph_from_json(v, arrays) for v in structure]
    if not isinstance(structure, dict):
        return structure
    if len(structure) == 1 and next(iter(structure)).startswith("$"):
        (tag, inner), = structure.items()
        if tag == "$array":
            if inner not in arrays:
                raise _Corrupt(f"graph.npz has no array '{inner}'")
            return arrays[inner]
        if tag == "$tuple":
            if not isinstance(inner, list):
                raise _Corrupt(f"'{tag}' holds {json.dumps(inner)}, not a list")
            return tuple(graph_from_json(v, arrays) for v in inner)
        name = tag[1:]
        if name != "dict" and name not in _CLASSES:
            raise _Corrupt(f"unknown type '{name}'")
        if not isinstance(inner, dict):
            raise _Corrupt(f"'{tag}' holds {json.dumps(inner)}, not the fields of a {name}")
        fields = {k: graph_from_json(v, arrays) for k, v in inner.items()}
        return fields if name == "dict" else _CLASSES[name](**fields)
    return {k: graph_from_json(v, arrays) for k, v in structure.items()}


# -- the plan -------------------------------------------------------------------------------------


def plan_to_json(graph, plan):
    """`plan` (layer name → `Folding`) as {layer: {field: value}}, in `graph`'s layer
    order; a field that is itself a dataclass is a nested object of its fields."""
    return {layer.name: dataclasses.asdict(plan[layer.name]) for layer in graph.layers}


def plan_from_json(graph, data):
    """The plan `plan_to_json` gave for `graph`.

    Each folding is rebuilt field by field from `dataclasses.fields(Folding)`: a field
    whose default is a dataclass is rebuilt likewise as that default's class; a field with a
    default takes only a value of the default's type, a field without one a value of its
    annotated type.

    Raises
    ------
    ValueError
        If the layers are not `graph`'s or a folding lacks a field, has one more, or a value
        of the wrong type (the message says which).
    """
    names = [layer.name for layer in graph.layers]
    if not isinstance(data, dict) or sorted(data) != sorted(names):
        found = sorted(data) if isinstance(data, dict) else data
        raise _Corrupt(f"the folding is for layers {found}, the graph has {sorted(names)}")
    return {name: _fields_from_json(Folding, data[name], name) for name in names}


def _fields_from_json(cls, data, where):
    fields = dataclasses.fields(cls)
    if not isinstance(data, dict) or set(data) != {f.name for f in fields}:
        found = sorted(data) if isinstance(data, dict) else data
        raise _Corrupt(f"'{where}': expected the fields {sorted(f.name for f in fields)} of "
                       f"{cls.__name__}, found {found}")
    values = {}
    for f in fields:
        default = (f.default if f.default is not dataclasses.MISSING
                   else f.default_factory() if f.default_factory is not dataclasses.MISSING
                   else None)
        value = data[f.name]
        if dataclasses.is_dataclass(default):
            value = _fields_from_json(type(default), value, f"{where}.{f.name}")
        else:
            kind = type(default) if default is not None else f.type
            if isinstance(kind, type) and type(value) is not kind:
                raise _Corrupt(f"'{where}.{f.name}': expected a {kind.__name__}, found "
                               f"{json.dumps(value)}")
        values[f.name] = value
    return cls(**values)
