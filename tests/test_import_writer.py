"""The importers' writer: labels, and repeated structures as blocks.

Oracle for the structure recognition: the flat text the writer also writes
(``--flat``), elaborated by archdsl itself; the structured text must give
the same node names (so the same state_dict keys), specs, shapes and
figures.  The networks here are small hand-made ``Network``s whose
structure is stated in each test.
"""

import archdsl
from archdsl.importers.writer import Instance, Layer, Network, find_blocks, legal_path


def _residual(net, prefix, source, channels=8):
    """conv -> relu -> conv, added to the input, as ``prefix.*`` (a BasicBlock)."""
    shape = (channels, 4, 4)
    net.add(Layer(f"{prefix}.conv1", f"conv2d({channels}, 3, padding=1)", (source,), shape, params=584, macs=9216))
    net.add(Layer(f"{prefix}.relu", "relu", (f"{prefix}.conv1",), shape))
    net.add(Layer(f"{prefix}.conv2", f"conv2d({channels}, 3, padding=1)", (f"{prefix}.relu",), shape, params=584,
                  macs=9216))
    net.add(Layer(f"{prefix}.add", "add", (f"{prefix}.conv2", source), shape))
    return f"{prefix}.add"


def _network(count=3, change_last=False):
    net = Network("Net", "net.onnx")
    x = net.add_input("x", (8, 4, 4))
    for i in range(count):
        x = _residual(net, f"layer1.{i}", x, 8)
    if change_last:
        net.layers[-2].op = "conv2d(8, 3, padding=1, bias=false)"
    net.add(Layer("head", "global_avgpool", (x,), (8, 1, 1)))
    net.outputs.append(("y", "head"))
    return net


def _outputs(net):
    return {label for _, label in net.outputs}


def test_identical_instances_are_one_group():
    net = _network(3)
    groups = find_blocks(net.layers, net.shape, _outputs(net))
    assert groups == [[Instance("layer1.0", 0, 4), Instance("layer1.1", 4, 8), Instance("layer1.2", 8, 12)]]


def test_different_arguments_are_not_grouped():
    net = _network(2, change_last=True)  # layer1.1's conv2 has no bias
    assert find_blocks(net.layers, net.shape, _outputs(net)) == []


def test_an_instance_read_from_inside_is_not_a_block():
    net = _network(2)
    net.add(Layer("tap", "relu", ("layer1.0.relu",), (8, 4, 4)))  # reads the middle of layer1.0
    net.outputs.append(("t", "tap"))
    groups = find_blocks(net.layers, net.shape, _outputs(net))
    assert all(instance.prefix != "layer1.0" for group in groups for instance in group)
    assert groups == []  # layer1.1 alone is no repetition


def test_outermost_repetition_wins_and_single_layers_are_left_alone():
    # stage.0 and stage.1 each hold two identical sub-blocks a and b: the
    # stages are the blocks, not their parts; single relus are never blocks.
    net = Network("Net", "net.onnx")
    x = net.add_input("x", (8, 4, 4))
    for stage in range(2):
        for part in ("a", "b"):
            x = _residual(net, f"stage.{stage}.{part}", x)
    for i in range(2):
        net.add(Layer(f"acts.{i}", "relu", (x,), (8, 4, 4)))
        x = f"acts.{i}"
    net.outputs.append(("y", x))
    groups = find_blocks(net.layers, net.shape, _outputs(net))
    assert [[i.prefix for i in group] for group in groups] == [["stage.0", "stage.1"]]


def test_structured_text_elaborates_to_the_flat_graph():
    net = _network(3)
    flat, structured = net.to_cnn(flat=True), net.to_cnn()
    assert "block " not in flat
    assert structured.count("\nblock ") == 1 and "layer1: repeat 3 { Layer1Block() }" in structured
    assert len(structured.splitlines()) < len(flat.splitlines())
    a, b = archdsl.loads(flat, "flat.cnn").models[0], archdsl.loads(structured, "s.cnn").models[0]
    assert {n: (v.spec, v.inputs) for n, v in a.nodes.items()} == {n: (v.spec, v.inputs) for n, v in b.nodes.items()}
    assert archdsl.analyze(b).ok  # the expect lines (params, MACs, output shape) hold


def test_calls_that_do_not_start_a_group_are_labelled():
    # layer1.0 differs (a projection), layer1.1 to layer1.3 are one block:
    # they are written in a group of their own, where a repeat would number
    # them 0 and 1, so each call carries its label.
    net = Network("Net", "net.onnx")
    x = net.add_input("x", (4, 4, 4))
    net.add(Layer("layer1.0.proj", "conv2d(8, 1)", (x,), (8, 4, 4), params=40, macs=512))
    net.add(Layer("layer1.0.relu", "relu", ("layer1.0.proj",), (8, 4, 4)))
    x = _residual(net, "layer1.1", "layer1.0.relu")
    x = _residual(net, "layer1.2", x)
    x = _residual(net, "layer1.3", x)
    net.outputs.append(("y", x))
    structured = net.to_cnn()
    assert "1: Layer1Block()" in structured and "3: Layer1Block()" in structured and "repeat" not in structured
    a, b = archdsl.loads(net.to_cnn(flat=True), "f.cnn").models[0], archdsl.loads(structured, "s.cnn").models[0]
    assert set(a.nodes) == set(b.nodes) and "layer1.3.conv2" in b.nodes


def test_labels_keep_names_the_language_accepts():
    # torchvision's RegNet keys: "block1-0" is a label (quoted), not renamed
    assert legal_path("trunk_output.block1.block1-0.f.a.0")
    assert not legal_path("layer1.0/Add") and not legal_path("onnx::Conv_12") and not legal_path("a..b")
    net = Network("Net", "net.onnx")
    x = net.add_input("x", (3, 4, 4))
    net.add(Layer(net.fresh_path("trunk.block1-0.conv"), "conv2d(4, 1)", (x,), (4, 4, 4), params=16, macs=192))
    net.add(Layer(net.fresh_path("block"), "relu", ("trunk.block1-0.conv",), (4, 4, 4)))
    net.outputs.append(("y", "block"))
    text = net.to_cnn()
    assert '"block1-0": (conv: conv2d(4, 1))' in text and '"block": relu' in text
    assert set(archdsl.loads(text, "m.cnn").models[0].nodes) == {"x", "trunk.block1-0.conv", "block"}
