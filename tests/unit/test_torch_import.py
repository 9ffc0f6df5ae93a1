"""PyTorch import (torch.export): small modules built in-test import as the equivalent hand-written Network, with
the MACs the module's own count (:func:`module_macs`) and closed forms give."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from codesign.errors import WorkloadError  # noqa: E402
from codesign.workloads import zoo  # noqa: E402
from codesign.workloads.layers import NETWORK_INPUT, Conv2d, Eltwise, Linear, MatMul, Network, Pool  # noqa: E402
from codesign.workloads.torch_import import from_torch  # noqa: E402
from codesign.workloads.torch_models import module_macs  # noqa: E402


class SmallCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.dw = nn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=8)
        self.pool = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.pw = nn.Conv2d(8, 8, 1, bias=False)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):  # type: ignore[no-untyped-def]
        x = torch.relu(self.bn1(self.conv1(x)))
        x = self.pool(self.dw(x))
        x = x + self.pw(x)
        return self.fc(torch.flatten(self.gap(x), 1))


def test_small_cnn_layer_table() -> None:
    net = from_torch(SmallCNN(), torch.zeros(2, 3, 32, 32))
    assert net.layers == (
        Conv2d("conv1", in_channels=3, out_channels=8, in_h=32, in_w=32, kernel=3, stride=2, padding=1, bias=True,
               sources=(NETWORK_INPUT,)),
        Conv2d("dw", in_channels=8, out_channels=8, in_h=16, in_w=16, kernel=3, padding=2, dilation=2, groups=8,
               sources=("conv1",)),  # through BN and ReLU
        Pool("pool", channels=8, in_h=16, in_w=16, kernel=3, stride=2, padding=(0, 0, 1, 1), op="max",
             sources=("dw",)),
        Conv2d("pw", in_channels=8, out_channels=8, in_h=8, in_w=8, kernel=1, bias=False, sources=("pool",)),
        Eltwise("add", elements=8 * 8 * 8, sources=("pool", "pw")),  # x + pw(x): the graph's residual edge
        Pool("gap", channels=8, in_h=8, in_w=8, op="avg", global_=True, sources=("add",)),
        Linear("fc", in_features=8, out_features=10, tokens=1, sources=("gap",)),
    )
    assert (net.batch, net.input_shape, net.name) == (2, (3, 32, 32), "SmallCNN")


class Attention(nn.Module):
    def __init__(self, d: int = 32, h: int = 4) -> None:
        super().__init__()
        self.h = h
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d, bias=False)

    def forward(self, x):  # type: ignore[no-untyped-def]
        b, s, d = x.shape
        q, k, v = self.qkv(x).reshape(b, s, 3, self.h, d // self.h).permute(2, 0, 3, 1, 4)
        p = torch.softmax(q @ k.transpose(-2, -1), dim=-1)
        ctx = torch.matmul(p, v).transpose(1, 2).reshape(b, s, d)
        return self.proj(ctx) * 0.5


def test_attention_block() -> None:
    net = from_torch(Attention(), torch.zeros(1, 16, 32))
    assert [type(layer).__name__ for layer in net] == ["Linear", "MatMul", "MatMul", "Linear", "Eltwise"]
    assert net.layers[0] == Linear("qkv", in_features=32, out_features=96, tokens=16, sources=(NETWORK_INPUT,))
    assert net.layers[1] == MatMul("matmul", m=16, k=8, n=16, heads=4, sources=("qkv", "qkv"))
    assert net.layers[2] == MatMul("matmul_1", m=16, k=16, n=8, heads=4, sources=("matmul", "qkv"))
    assert net.layers[3] == Linear("proj", in_features=32, out_features=32, tokens=16, bias=False,
                                   sources=("matmul_1",))
    assert net.layers[4] == Eltwise("mul", elements=16 * 32, op="mul", inputs_count=1, sources=("proj",))


class TorchResNet8(nn.Module):
    """MLPerf Tiny ResNet-8 written the PyTorch way: symmetric padding 1 for the stride-2 3x3 convs."""

    def __init__(self) -> None:
        super().__init__()
        c = lambda i, o, s=1, k=3: nn.Conv2d(i, o, k, s, k // 2)  # noqa: E731
        self.conv1 = c(3, 16)
        self.s1a, self.s1b = c(16, 16), c(16, 16)
        self.s2a, self.s2b, self.s2s = c(16, 32, 2), c(32, 32), c(16, 32, 2, 1)
        self.s3a, self.s3b, self.s3s = c(32, 64, 2), c(64, 64), c(32, 64, 2, 1)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, 10)

    def forward(self, x):  # type: ignore[no-untyped-def]
        x = self.conv1(x)
        x = x + self.s1b(self.s1a(x))
        x = self.s2s(x) + self.s2b(self.s2a(x))
        x = self.s3s(x) + self.s3b(self.s3a(x))
        return self.fc(self.gap(x).flatten(1))


def test_resnet8_matches_zoo_counts() -> None:
    """Same MACs and params as the zoo's Keras-defined ResNet-8 (TF pads 0/1 where torch pads 1/1; the
    output sizes, so the counts, are equal)."""
    net = from_torch(TorchResNet8(), torch.zeros(1, 3, 32, 32))
    ref = zoo.get("resnet8_cifar")
    assert (net.macs, net.params) == (ref.macs, ref.params) == (12_501_632, 77_706)


def test_unsupported_module() -> None:
    class Up(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.up = nn.ConvTranspose2d(3, 3, 2, 2)

        def forward(self, x):  # type: ignore[no-untyped-def]
            return self.up(x)

    with pytest.raises(WorkloadError) as e:
        from_torch(Up(), torch.zeros(1, 3, 8, 8))
    assert str(e.value) == "Up: unsupported op transposed convolution (aten.conv_transpose2d.input) at node 'up'"


def test_untraceable_module() -> None:
    class Branchy(nn.Module):
        def forward(self, x):  # type: ignore[no-untyped-def]
            if x.sum() > 0:
                return x
            return -x

    with pytest.raises(WorkloadError, match=r"^Branchy: torch\.export cannot export the module \("):
        from_torch(Branchy(), torch.zeros(1, 3))


def test_returns_network() -> None:
    net = from_torch(nn.Sequential(nn.Linear(640, 128), nn.ReLU(), nn.Linear(128, 640)), torch.zeros(4, 640),
                     name="ae")
    assert isinstance(net, Network) and net.name == "ae" and net.batch == 4
    assert net.macs == 4 * (640 * 128 * 2)


# -- torch.export: functional calls, fused attention, encoder layers, measured density, simulate(module) -------


class Functional(nn.Module):
    """Weights held as parameters and applied with F.conv2d / F.linear (no nn.Conv2d / nn.Linear)."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(8, 3, 3, 3))
        self.fc = nn.Parameter(torch.randn(10, 8))

    def forward(self, x):  # type: ignore[no-untyped-def]
        y = nn.functional.conv2d(x, self.w, stride=2, padding=1)
        return nn.functional.linear(y.mean((2, 3)), self.fc)


def test_functional_conv_and_linear() -> None:
    net = from_torch(Functional(), torch.zeros(1, 3, 16, 16))
    assert net.layers == (
        Conv2d("conv2d", in_channels=3, out_channels=8, in_h=16, in_w=16, kernel=3, stride=2, padding=1, bias=False,
               sources=(NETWORK_INPUT,)),
        Pool("mean", channels=8, in_h=8, in_w=8, op="avg", global_=True, sources=("conv2d",)),
        Linear("linear", in_features=8, out_features=10, tokens=1, bias=False, sources=("mean",)),
    )
    assert net.macs == 8 * 8 * 8 * 27 + 80 == module_macs(Functional(), torch.zeros(1, 3, 16, 16)).total


class FusedAttention(nn.Module):
    """timm's Attention with fused_attn: F.scaled_dot_product_attention instead of q @ k^T, softmax, @ v."""

    def __init__(self, d: int = 32, h: int = 4) -> None:
        super().__init__()
        self.h = h
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)

    def forward(self, x):  # type: ignore[no-untyped-def]
        b, s, d = x.shape
        q, k, v = self.qkv(x).reshape(b, s, 3, self.h, d // self.h).permute(2, 0, 3, 1, 4)
        y = nn.functional.scaled_dot_product_attention(q, k, v)
        return self.proj(y.transpose(1, 2).reshape(b, s, d))


def test_sdpa_is_scores_and_context() -> None:
    net = from_torch(FusedAttention(), torch.zeros(2, 16, 32))
    assert net.layers == (
        Linear("qkv", in_features=32, out_features=96, tokens=16, sources=(NETWORK_INPUT,)),
        MatMul("scaled_dot_product_attention.scores", m=16, k=8, n=16, heads=4, sources=("qkv", "qkv")),
        MatMul("scaled_dot_product_attention.context", m=16, k=16, n=8, heads=4,
               sources=("scaled_dot_product_attention.scores", "qkv")),
        Linear("proj", in_features=32, out_features=32, tokens=16, sources=("scaled_dot_product_attention.context",)),
    )
    # per sample: projections 16*32*(96+32), attention 2 * 4 heads * 16*16*8; the batch of 2 doubles it
    assert net.macs == 2 * (16 * 32 * 128 + 2 * 4 * 16 * 16 * 8) == 163_840
    assert net.macs == module_macs(FusedAttention(), torch.zeros(2, 16, 32)).total


def test_transformer_encoder_layer() -> None:
    """nn.TransformerEncoderLayer(64, 4, 128): in/out projections 4*E^2, FFN 2*E*F per token, attention
    2*S^2*E; S = 10 tokens."""
    layer = nn.TransformerEncoderLayer(64, 4, 128, batch_first=True)
    net = from_torch(layer, torch.zeros(1, 10, 64))
    assert [type(x).__name__ for x in net if x.has_gemm] == ["Linear", "MatMul", "MatMul", "Linear", "Linear",
                                                             "Linear"]
    assert net.macs == 10 * (4 * 64 * 64 + 2 * 64 * 128) + 2 * 10 * 10 * 64 == 340_480
    assert net.macs == module_macs(layer, torch.zeros(1, 10, 64)).total


def test_pruned_weights_are_measured() -> None:
    from torch.nn.utils import prune

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(4, 8, 3, padding=1), nn.Flatten(), nn.Linear(8 * 4 * 4, 16))
    prune.l1_unstructured(model[0], "weight", amount=0.75)  # weight = weight_orig * weight_mask
    mask = torch.ones(16, 128)
    mask.view(16, 32, 4)[:, :, 2:] = 0  # two zeros in every four along K: 2:4
    prune.custom_from_mask(model[2], "weight", mask)
    net = from_torch(model, torch.zeros(1, 4, 4, 4))
    conv, fc = net.layer("0"), net.layer("2")
    assert conv.weights.density == 0.25  # 3/4 of the 288 weights pruned (l1_unstructured rounds to 216)
    assert (fc.weights.pattern.value, fc.weights.n, fc.weights.m) == ("n:m", 2, 4)
    # the module keeps its pruning (weight_orig, weight_mask, the hook) after the import
    assert {n for n, _ in model[0].named_buffers()} == {"weight_mask"}
    model(torch.zeros(1, 4, 4, 4))
    assert torch.equal(model[0].weight, model[0].weight_orig * model[0].weight_mask)


def test_simulate_a_module() -> None:
    import codesign

    # im2col'd convolutions (the fusion model plans its producers as GEMMs: on-chip windows are not fused)
    cfg = codesign.AcceleratorConfig(rows=8, cols=8, fusion="none", conv_windows=False)
    res = codesign.simulate(TorchResNet8(), cfg, input_shape=(1, 3, 32, 32))
    assert res.macs == 12_501_632  # the zoo ResNet-8's count (test_resnet8_matches_zoo_counts)
    assert res.cycles == codesign.simulate("resnet8_cifar", cfg).cycles  # same layers, same machine
    # with fusion the traced order runs each shortcut before its branch, so the adds fuse into conv2
    # instead of the shortcut conv (built: the residual read with the head's loads, the vector unit's ADD
    # in its write-back): 230,871 against the zoo's 232,407 cycles (245,103 unfused; the global average
    # pool as its GEMM on the array, its 64 values kept in the input buffer for the fc: sim.residency)
    fused = codesign.simulate(TorchResNet8(), cfg.replace(fusion="eltwise"), input_shape=(1, 3, 32, 32))
    zoo_fused = codesign.simulate("resnet8_cifar", cfg.replace(fusion="eltwise"))
    assert (fused.cycles, zoo_fused.cycles) == (230_871, 232_407)
    with pytest.raises(WorkloadError) as e:
        codesign.simulate(TorchResNet8(), cfg)
    assert str(e.value) == "a PyTorch module (TorchResNet8) needs input_shape, e.g. (1, 3, 224, 224)"
    with pytest.raises(WorkloadError) as e:
        codesign.simulate(TorchResNet8(), cfg, input_shape=(1, 3, 0, 32))
    assert str(e.value) == ("TorchResNet8: input_shape must be a tensor or positive integers like (1, 3, 224, 224), "
                            "not (1, 3, 0, 32)")


@pytest.mark.slow
def test_deit_tiny_fused_attention_counts() -> None:
    """timm's DeiT-Tiny uses F.scaled_dot_product_attention: its 12 blocks' attention is 178.8 M of 1.254 G MACs
    (the fx importer dropped it: -14 %)."""
    from codesign.workloads.torch_models import build_model

    model = build_model("timm:deit_tiny_patch16_224")
    ref = module_macs(model, torch.zeros(1, 3, 224, 224))
    assert (ref.total, ref.matmul) == (1_253_683_200, 12 * 2 * 3 * 197 * 197 * 64)
    assert from_torch(model, (1, 3, 224, 224)).macs == ref.total == zoo.get("deit_tiny").macs


def test_load_workload_bad_specs() -> None:
    from codesign.api import load_workload

    with pytest.raises(WorkloadError) as e:
        load_workload(3.5)  # type: ignore[arg-type]
    assert str(e.value) == "workload must be a Network, a zoo name, a model file or a torch.nn.Module, not float"
    with pytest.raises(WorkloadError) as e:
        load_workload("resnet8_cifar", input_shape=(1, 3, 32, 32))
    assert str(e.value) == "input_shape applies to ONNX files and PyTorch modules, not 'resnet8_cifar'"
    with pytest.raises(WorkloadError) as e:
        load_workload(TorchResNet8(), input_shape=(1, 3, 32, 32), skip_unsupported=True)
    assert str(e.value) == "a PyTorch module takes input_shape and batch only, not ['skip_unsupported']"
    assert load_workload(TorchResNet8(), input_shape=(1, 3, 32, 32), batch=2).batch == 2
