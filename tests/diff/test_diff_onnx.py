"""ONNX graph diffs on real models: the onnx package's operator test models (Slice, Split), its
converted PyTorch model test_operator_chunk, and a model exported from PyTorch and then edited."""

from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from mlark.diff import diff_onnx, diff_paths
from mlark.diff.errors import InputNotFound, KindMismatch, UnreadableFile

DATA = Path(onnx.__file__).parent / "backend" / "test" / "data"
CHUNK = DATA / "pytorch-operator" / "test_operator_chunk" / "model.onnx"


@pytest.fixture(scope="module")
def cases():
    """The operator test models onnx builds (once per process: onnx caches the list globally)."""
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        found = {t.name: t for t in collect_testcases(None) if t.name.startswith(("test_slice", "test_split"))}
    assert len([n for n in found if not n.startswith("test_split_to_sequence")]) >= 24
    return found


def bound(case, as_constants: bool = False) -> onnx.ModelProto:
    """The case's model with every graph input but the first turned into a constant holding the
    test's input value: an initializer (how exporters store them) or a Constant node."""
    model = copy.deepcopy(case.model)
    values = case.data_sets[0][0]
    graph = model.graph
    keep = [graph.input[0]]
    constants = []
    for vi, value in zip(list(graph.input)[1:], values[1:]):
        tensor = numpy_helper.from_array(np.asarray(value), vi.name)
        if as_constants:
            constants.append(helper.make_node("Constant", [], [vi.name], value=tensor, name=f"const_{vi.name}"))
        else:
            graph.initializer.append(tensor)
    del graph.input[:]
    graph.input.extend(keep)
    if constants:
        nodes = constants + list(graph.node)
        del graph.node[:]
        graph.node.extend(nodes)
    onnx.checker.check_model(model)
    return model


def only_change(d, op_type):
    changes = d.changed_nodes(op_type)
    assert len(changes) == 1, d.render(width=160)
    return changes[0]


# -- Slice ---------------------------------------------------------------------------------------------


def test_slice_variants_as_graph_inputs(cases) -> None:
    d = diff_onnx(cases["test_slice"].model, cases["test_slice_neg_steps"].model)
    assert d.nodes_unchanged == 1 and not d.nodes_changed  # same Slice wired to the same graph inputs
    inputs = {c.name: (c.shape_a, c.shape_b) for c in d.inputs}
    assert inputs == {"starts": ((2,), (3,)), "ends": ((2,), (3,)), "axes": ((2,), (3,)), "steps": ((2,), (3,))}
    assert [(c.name, c.shape_a, c.shape_b) for c in d.outputs] == [("y", (3, 10, 5), (19, 3, 2))]

    d = diff_onnx(cases["test_slice"].model, cases["test_slice_default_axes"].model)
    c = only_change(d, "Slice")
    assert c.matched_by == "position"  # the nodes have no names
    assert [(i.name, i.kind, i.a, i.b) for i in c.inputs] == [
        ("axes", "removed", "graph input axes", None), ("steps", "removed", "graph input steps", None)]
    assert {(x.status, x.name) for x in d.inputs} >= {("removed", "axes"), ("removed", "steps")}


@pytest.mark.parametrize("as_constants", [False, True], ids=["initializers", "constant-nodes"])
def test_slice_starts_ends_axes_steps_as_constant_inputs(cases, as_constants) -> None:
    d = diff_onnx(bound(cases["test_slice"], as_constants), bound(cases["test_slice_neg_steps"], as_constants))
    c = only_change(d, "Slice")
    got = {i.name: (list(i.a.values), list(i.b.values)) for i in c.inputs}
    assert got == {
        "starts": ([0, 0], [20, 10, 4]),
        "ends": ([3, 10], [0, 0, 1]),
        "axes": ([0, 1], [0, 1, 2]),
        "steps": ([1, 1], [-1, -3, -2]),
    }
    assert all(i.kind == "value" for i in c.inputs) and not c.attributes
    assert d.nodes_a == d.nodes_b == 1  # Constant nodes are values, not operators
    if as_constants:
        assert not d.initializers
    else:
        assert {t.name: t.status for t in d.initializers} == {
            "starts": "reshaped", "ends": "reshaped", "axes": "reshaped", "steps": "reshaped"}

    d = diff_onnx(bound(cases["test_slice_end_out_of_bounds"], as_constants),
                  bound(cases["test_slice_start_out_of_bounds"], as_constants))
    c = only_change(d, "Slice")
    assert {i.name: (list(i.a.values), list(i.b.values)) for i in c.inputs} == {"starts": ([1], [1000])}


def test_initializer_and_constant_node_forms_are_the_same_input(cases) -> None:
    d = diff_onnx(bound(cases["test_slice_neg_steps"]), bound(cases["test_slice_neg_steps"], as_constants=True))
    assert not d.nodes_changed and d.nodes_unchanged == 1
    assert {t.status for t in d.initializers} == {"removed"}  # initializers became Constant nodes


def test_slice_given_as_attributes_before_opset_10() -> None:
    def model(starts, ends, axes):
        node = helper.make_node("Slice", ["x"], ["y"], starts=starts, ends=ends, axes=axes)
        x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [20, 10])
        y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)
        graph = helper.make_graph([node], "slice1", [x], [y])
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 9)])

    d = diff_onnx(model([0, 0], [3, 10], [0, 1]), model([0, 2], [3, 8], [0, 1]))
    c = only_change(d, "Slice")
    assert {a.name: (a.a, a.b) for a in c.attributes} == {"starts": ((0, 0), (0, 2)), "ends": ((3, 10), (3, 8))}


# -- Split ---------------------------------------------------------------------------------------------


def test_split_axis_and_outputs(cases) -> None:
    d = diff_onnx(cases["test_split_equal_parts_1d_opset13"].model, cases["test_split_equal_parts_2d_opset13"].model)
    c = only_change(d, "Split")
    assert [(a.name, a.a, a.b) for a in c.attributes] == [("axis", 0, 1)]
    assert c.outputs == (3, 2)
    assert [(o.status, o.name) for o in d.outputs if o.status != "changed"] == [("removed", "output_3")]


def test_split_default_axis_is_no_change(cases) -> None:
    d = diff_onnx(cases["test_split_equal_parts_1d_opset13"].model,
                  cases["test_split_equal_parts_default_axis_opset13"].model)
    assert not d.nodes_changed and d.nodes_unchanged == 1  # axis=0 written out vs the default 0


def test_split_sizes_as_constant_input(cases) -> None:
    one_d = bound(cases["test_split_variable_parts_1d_opset13"])
    d = diff_onnx(one_d, bound(cases["test_split_variable_parts_2d_opset13"]))
    c = only_change(d, "Split")
    assert [(a.name, a.a, a.b) for a in c.attributes] == [("axis", 0, 1)]
    assert not c.inputs  # the sizes are [2, 4] in both
    d = diff_onnx(one_d, bound(cases["test_split_zero_size_splits_opset13"]))
    c = only_change(d, "Split")
    assert [(i.name, list(i.a.values), list(i.b.values)) for i in c.inputs] == [("split", [2, 4], [0, 0, 0])]
    assert c.outputs == (2, 3)


def test_split_num_outputs_opset18(cases) -> None:
    d = diff_onnx(cases["test_split_equal_parts_1d_opset18"].model, cases["test_split_1d_uneven_split_opset18"].model)
    c = only_change(d, "Split")
    assert [(a.name, a.a, a.b) for a in c.attributes] == [("num_outputs", 3, 4)]
    d = diff_onnx(cases["test_split_variable_parts_2d_opset13"].model,
                  cases["test_split_variable_parts_2d_opset18"].model)
    assert {v.name: (v.a, v.b) for v in d.model}["opset.ai.onnx"] == (13, 18)
    assert not d.nodes_changed


def test_converted_pytorch_chunk_model(tmp_path) -> None:
    model = onnx.load(CHUNK)
    assert [n.op_type for n in model.graph.node] == ["Split"]
    assert not diff_onnx(CHUNK, CHUNK).has_changes
    edited = copy.deepcopy(model)
    for attr in edited.graph.node[0].attribute:
        if attr.name == "split":
            del attr.ints[:]
            attr.ints.extend([1, 2])
    onnx.save(edited, tmp_path / "chunk.onnx")
    d = diff_onnx(CHUNK, tmp_path / "chunk.onnx")
    c = only_change(d, "Split")
    assert [(a.name, a.a, a.b) for a in c.attributes] == [("split", (2, 1), (1, 2))]
    assert d.summary().endswith("nodes +0 -0 ~1")


# -- a model exported from PyTorch, then edited ----------------------------------------------------------


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch = pytest.importorskip("torch")

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = torch.nn.Linear(4, 6)
            self.out = torch.nn.Linear(3, 2)

        def forward(self, x):
            y = self.lin(x)
            return self.out(y[:, 1:4])

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("export") / "net.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # dynamo=False: the TorchScript exporter works offline; the dynamo exporter needs onnxscript
        torch.onnx.export(Net().eval(), (torch.randn(2, 4),), str(path), dynamo=False, opset_version=17,
                          input_names=["x"], output_names=["y"])
    return path


def _edit(model: onnx.ModelProto) -> onnx.ModelProto:
    m = copy.deepcopy(model)
    g = m.graph
    slice_node = next(n for n in g.node if n.op_type == "Slice")
    producers = {o: n for n in g.node for o in n.output}
    ends = producers[slice_node.input[2]]  # a Constant node (TorchScript exporter)
    assert ends.op_type == "Constant"
    ends.attribute[0].t.CopyFrom(numpy_helper.from_array(np.array([5], dtype=np.int64), ends.attribute[0].t.name))
    # a Relu between the first Gemm and the Slice
    gemm = next(n for n in g.node if n.op_type == "Gemm")
    relu = helper.make_node("Relu", [gemm.output[0]], ["relu_out"], name="/relu/Relu")
    slice_node.input[0] = "relu_out"
    nodes = list(g.node)
    nodes.insert(nodes.index(gemm) + 1, relu)
    del g.node[:]
    g.node.extend(nodes)
    # end 5 makes the slice 4 wide: widen the second layer's weight to match, and shift the first bias
    for init in g.initializer:
        arr = numpy_helper.to_array(init)
        if init.name == "lin.bias":
            init.CopyFrom(numpy_helper.from_array(arr + 1.0, init.name))
        if init.name == "out.weight":
            wider = np.concatenate([arr, np.zeros((2, 1), arr.dtype)], axis=1)
            init.CopyFrom(numpy_helper.from_array(wider, init.name))
    onnx.checker.check_model(m)
    return m


def test_exported_and_edited_model(exported, tmp_path) -> None:
    ort = pytest.importorskip("onnxruntime")
    model = onnx.load(exported)
    edited = _edit(model)
    onnx.save(edited, tmp_path / "edited.onnx")
    x = np.random.default_rng(0).normal(size=(2, 4)).astype(np.float32)
    for p in (exported, tmp_path / "edited.onnx"):  # both still run
        ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(None, {"x": x})

    d = diff_onnx(exported, tmp_path / "edited.onnx")
    assert [(n.op_type, n.name) for n in d.nodes_added] == [("Relu", "/relu/Relu")]
    assert not d.nodes_removed
    c = only_change(d, "Slice")
    assert c.matched_by == "name"
    by_name = {i.name: i for i in c.inputs}
    assert list(by_name["ends"].a.values) == [4] and list(by_name["ends"].b.values) == [5]
    assert by_name["data"].kind == "source" and by_name["data"].b == "/relu/Relu"  # rewired through the Relu
    inits = {t.name: t for t in d.initializers}
    assert inits["lin.bias"].status == "changed" and inits["lin.bias"].max_abs_diff == pytest.approx(1.0)
    assert inits["lin.bias"].changed_elements == 6
    assert (inits["out.weight"].status, inits["out.weight"].shape_a, inits["out.weight"].shape_b) == (
        "reshaped", (2, 3), (2, 4))
    assert inits["lin.weight"].status == "unchanged"
    assert not d.inputs and not d.outputs

    data = json.loads(json.dumps(d.to_dict(), allow_nan=False))
    slice_change = next(c for c in data["nodes"]["changed"] if c["a"]["op_type"] == "Slice")
    ends = next(i for i in slice_change["inputs"] if i["name"] == "ends")
    assert ends["a"]["values"] == [4] and ends["b"]["values"] == [5]
    text = d.render(width=120)
    assert "input ends" in text and "[4] -> [5]" in text and "lin.bias" in text
    md = d.to_markdown()
    assert "#### Nodes" in md and "| added | /relu/Relu | Relu |" in md


def test_real_models_from_the_onnx_package() -> None:
    a, b = DATA / "light" / "light_inception_v1.onnx", DATA / "light" / "light_inception_v2.onnx"
    d = diff_onnx(a, b)
    assert d.nodes_a == len([n for n in onnx.load(a).graph.node if n.op_type != "Constant"])
    assert d.nodes_added and d.nodes_removed and d.initializers
    assert not diff_onnx(a, a).has_changes
    assert isinstance(d.render(width=100), str) and json.dumps(d.to_dict(), allow_nan=False)


def _graph_model(input_name: str, branch_value: float, dim: int | str) -> onnx.ModelProto:
    """x -> If(cond) { then: x + c, else: x } -> y, with a symbolic or fixed batch dimension."""
    def branch(name: str, value: float | None) -> onnx.GraphProto:
        out = helper.make_tensor_value_info(f"{name}_out", onnx.TensorProto.FLOAT, None)
        if value is None:
            node = helper.make_node("Identity", [input_name], [f"{name}_out"])
            return helper.make_graph([node], name, [], [out])
        c = helper.make_tensor(f"{name}_c", onnx.TensorProto.FLOAT, [], [value])
        node = helper.make_node("Add", [input_name, f"{name}_c"], [f"{name}_out"])
        return helper.make_graph([node], name, [], [out], initializer=[c])

    cond = helper.make_tensor("cond", onnx.TensorProto.BOOL, [], [True])
    node = helper.make_node("If", ["cond"], ["y"], then_branch=branch("then", branch_value),
                            else_branch=branch("else", None), name="choose")
    x = helper.make_tensor_value_info(input_name, onnx.TensorProto.FLOAT, [dim, 3])
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)
    graph = helper.make_graph([node], "g", [x], [y], initializer=[cond])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_renamed_inputs_symbolic_shapes_and_subgraphs() -> None:
    d = diff_onnx(_graph_model("x", 1.0, "N"), _graph_model("x", 1.0, "N"))
    assert not d.has_changes
    d = diff_onnx(_graph_model("x", 1.0, "N"), _graph_model("x", 1.0, 8))
    assert [(c.status, c.name, c.shape_a, c.shape_b) for c in d.inputs] == [("changed", "x", ("N", 3), (8, 3))]
    d = diff_onnx(_graph_model("x", 1.0, "N"), _graph_model("x", 2.0, "N"))
    c = only_change(d, "If")
    assert [a.name for a in c.attributes] == ["then_branch"]
    assert c.attributes[0].a.nodes == c.attributes[0].b.nodes == 1
    assert any("subgraphs" in n for n in d.notes)
    d = diff_onnx(_graph_model("x", 1.0, "N"), _graph_model("features", 1.0, "N"))
    assert [(c.status, c.name_a, c.name_b) for c in d.inputs] == [("renamed", "x", "features")]


def test_large_weights_under_new_names_compare_by_content() -> None:
    def model(name: str, scale: float) -> onnx.ModelProto:
        w = numpy_helper.from_array((np.arange(400, dtype=np.float32) * scale).reshape(20, 20), name)
        node = helper.make_node("MatMul", ["x", name], ["y"])
        x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 20])
        y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 20])
        graph = helper.make_graph([node], "g", [x], [y], initializer=[w])
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])

    d = diff_onnx(model("onnx::MatMul_3", 1.0), model("onnx::MatMul_7", 1.0))
    assert not d.nodes_changed  # same bytes under another name: the same input
    assert {t.status for t in d.initializers} == {"added", "removed"}
    d = diff_onnx(model("onnx::MatMul_3", 1.0), model("onnx::MatMul_7", 2.0))
    c = only_change(d, "MatMul")
    assert c.inputs[0].name == "B" and c.inputs[0].kind == "value"
    assert c.inputs[0].a.shape == (20, 20) and c.inputs[0].a.values is None  # shown by digest
    d = diff_onnx(model("w", 1.0), model("w", 2.0))
    assert not d.nodes_changed  # a weight that keeps its name: compared with the initializers
    assert d.initializers[0].status == "changed" and d.initializers[0].max_abs_diff == 399.0


# -- bad input -----------------------------------------------------------------------------------------


def test_model_that_does_not_load(tmp_path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage that is not protobuf \xff\xff\xff")
    with pytest.raises(UnreadableFile) as err:
        diff_onnx(CHUNK, bad)
    assert str(bad) in str(err.value) and "ONNX" in str(err.value)
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    with pytest.raises(UnreadableFile, match="holds no ONNX model"):
        diff_onnx(empty, CHUNK)
    with pytest.raises(InputNotFound):
        diff_onnx(tmp_path / "missing.onnx", CHUNK)


def test_dispatch_by_kind(tmp_path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"a": [1]}), tmp_path / "t.parquet")
    with pytest.raises(KindMismatch, match="cannot compare an ONNX model .* with a table"):
        diff_paths(CHUNK, tmp_path / "t.parquet")
    folder = tmp_path / "model"
    folder.mkdir()
    onnx.save(onnx.load(CHUNK), folder / "model.onnx")
    d = diff_paths(CHUNK, folder)
    assert d.kind == "onnx" and not d.has_changes
