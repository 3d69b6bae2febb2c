"""``archdsl summary --tree`` / ``--columns``: the torchinfo-like view.

The golden rows below are written by hand for torchvision's ResNet-18 at
3x224x224, batch 1, float32 (torchinfo's ``summary(resnet18(), (1, 3, 224,
224), depth=2, col_names=("input_size", "output_size", "kernel_size",
"num_params", "mult_adds"))`` prints the same parameter and Mult-Adds
figures for these rows):

- conv1: 64·3·7·7 = 9,408 parameters; 112·112 positions · 64 · 3·7·7 =
  118,013,952 MACs; output 64·112·112 floats · 4 B = 3,211,264 B = 3.21 MB.
- bn1: 2·64 = 128 parameters (weight, bias; running stats are buffers).
- maxpool: (112 + 2 - 3)/2 + 1 = 56; 64·56·56·4 B = 802,816 B = 802.82 kB.
- layer1.0 (BasicBlock(64)): two 3x3 convs 2·64·64·9 = 73,728 and two
  batchnorms 2·128 → 73,984 parameters; MACs 2·56·56·64·64·9 = 231,211,008;
  memory: its 7 layers' outputs (conv1 bn1 relu conv2 bn2 add relu), each
  802,816 B → 5,619,712 B = 5.62 MB.
- layer1: two such blocks → 147,968 parameters, 462,422,016 MACs, 11.24 MB.
- layer2.0 (stride 2, 1x1 projection): 128·64·9 + 128·128·9 + 128·64 + 3·2·128
  = 73,728 + 147,456 + 8,192 + 768 = 230,144 parameters; 28·28·(73,728 +
  147,456 + 8,192) = 179,830,784 MACs.
- fc: 512·1000 + 1000 = 513,000 parameters, 512,000 MACs; 1000·4 B = 4.00 kB.
"""

from conftest import run_cli

GOLDEN_ROWS = """\
conv1      conv2d          [1, 3, 224, 224]   [1, 64, 112, 112]  7x7 /2      9,408  118,013,952    3.21 MB
bn1        batchnorm2d     [1, 64, 112, 112]  [1, 64, 112, 112]                128            0    3.21 MB
maxpool    maxpool2d       [1, 64, 112, 112]  [1, 64, 56, 56]    3x3 /2          0            0  802.82 kB
layer1     scope           [1, 64, 56, 56]    [1, 64, 56, 56]              147,968  462,422,016   11.24 MB
  + 0      BasicBlock      [1, 64, 56, 56]    [1, 64, 56, 56]               73,984  231,211,008    5.62 MB
  + 1      BasicBlock      [1, 64, 56, 56]    [1, 64, 56, 56]               73,984  231,211,008    5.62 MB
layer2     scope           [1, 64, 56, 56]    [1, 128, 28, 28]             525,568  411,041,792    6.42 MB
  + 0      BasicBlock      [1, 64, 56, 56]    [1, 128, 28, 28]             230,144  179,830,784    3.61 MB
fc         linear          [1, 512]           [1, 1000]                    513,000      512,000    4.00 kB
"""


def tree(*args: str) -> list[str]:
    result = run_cli("summary", "models/resnet18.cnn", *args)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_resnet18_tree_matches_the_hand_written_golden():
    lines = tree("--columns", "input,output,kernel,params,macs,memory", "--depth", "2", "--batch", "1")
    header = next(line for line in lines if line.startswith("Layer"))
    assert header.split() == ["Layer", "Op", "Input", "shape", "Output", "shape", "Kernel", "Params", "MACs",
                              "Memory"]
    for expected in GOLDEN_ROWS.splitlines():
        assert expected in lines, expected
    # layer2's total is its blocks' sum: 230,144 + 295,424 (conv 128·128·9 twice + 2 batchnorms).
    assert 230_144 + 2 * 128 * 128 * 9 + 2 * 256 == 525_568


def test_container_rows_come_before_their_indented_children():
    lines = tree("--tree")
    names = [line.split()[0] if not line.startswith(" ") else line[:len(line) - len(line.lstrip())] +
             line.split()[0] for line in lines]
    start = names.index("layer1")
    assert names[start:start + 4] == ["layer1", "  0", "    conv1", "    bn1"]
    assert "  downsample" not in names  # layer1 has no projection
    assert "    downsample" in names and "      0" in names  # layer2.0.downsample.0, a level deeper
    assert any(line.startswith("avgpool ") for line in lines)


def test_depth_collapses_into_the_container_row_and_keeps_totals():
    lines = tree("--tree", "--depth", "1")
    rows = [line.split()[:2] for line in lines if line.startswith("+ ")]
    assert rows == [["+", "layer1"], ["+", "layer2"], ["+", "layer3"], ["+", "layer4"]]
    assert not any(line.startswith("  ") for line in lines)
    assert any("11,689,512" in line for line in lines if line.startswith("Trainable parameters"))
    layer4 = next(line for line in lines if line.startswith("+ layer4"))
    # layer4: 919,040-style arithmetic for 512 channels: 3,673,088 + 4,720,640.
    assert f"{3_673_088 + 4_720_640:,}" in layer4


def test_connected_column_names_every_input_of_a_merge():
    lines = tree("--columns", "connected")
    add = next(line for line in lines if line.lstrip().startswith("add_1") and "layer1.0.bn2" in line)
    assert add.rstrip().endswith("layer1.0.bn2, maxpool")  # the residual: bn2 and the block's input


def test_batch_dimension_only_when_batch_is_given():
    assert any("[64, 112, 112]" in line and "[1, 64" not in line for line in tree("--tree"))
    conv1 = next(line for line in tree("--tree", "--batch", "8") if line.startswith("conv1 "))
    # 8 · 118,013,952 MACs; the shape leads with the batch.
    assert "[8, 64, 112, 112]" in conv1 and f"{8 * 118_013_952:,}" in conv1


def test_default_tree_fits_100_columns_for_every_zoo_model():
    from conftest import MODELS

    for path in sorted(MODELS.glob("*.cnn")):
        result = run_cli("summary", str(path), "--tree")
        assert result.returncode == 0, result.stderr
        widest = max(len(line) for line in result.stdout.splitlines())
        assert widest <= 100, (path.name, widest)


def test_unknown_columns_and_formats_are_usage_errors():
    bad = run_cli("summary", "models/lenet5.cnn", "--columns", "output,bogus")
    assert bad.returncode == 2 and "bogus" in bad.stderr and "connected" in bad.stderr
    assert run_cli("summary", "models/lenet5.cnn", "--tree", "--format", "json").returncode == 2
