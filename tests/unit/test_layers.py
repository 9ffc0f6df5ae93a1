"""Layer shapes, GEMM lowering with groups, operands, MAC counts of the first zoo."""

from __future__ import annotations

import pytest

from codesign.errors import WorkloadError
from codesign.workloads import zoo
from codesign.workloads.layers import Conv2d, Eltwise, Linear, MatMul, Network, Pool
from codesign.workloads.operand import Operand, Pattern, parse_sparsity


def test_conv_output_and_gemm_lowering() -> None:
    # 3x3 stride 2 pad 1 on 112x112: out = floor((112 + 2 - 3) / 2) + 1 = 56
    c = Conv2d("c", in_channels=32, out_channels=64, in_h=112, in_w=112, kernel=3, stride=2, padding=1)
    assert (c.out_h, c.out_w) == (56, 56)
    g = c.gemm(batch=2)
    assert (g.m, g.n, g.k, g.repeats) == (56 * 56 * 2, 64, 32 * 9, 1)
    assert c.macs(2) == 56 * 56 * 2 * 64 * 288
    assert c.params == 64 * 32 * 9 + 64


def test_depthwise_and_grouped() -> None:
    dw = Conv2d("dw", in_channels=96, out_channels=96, in_h=56, in_w=56, kernel=3, padding=1, groups=96, bias=False)
    g = dw.gemm()
    assert dw.is_depthwise and (g.m, g.n, g.k, g.repeats) == (3136, 1, 9, 96)
    assert dw.macs() == 3136 * 9 * 96 and dw.params == 96 * 9
    gr = Conv2d("g", in_channels=64, out_channels=128, in_h=8, in_w=8, kernel=1, groups=4)
    assert (gr.gemm().n, gr.gemm().k, gr.gemm().repeats) == (32, 16, 4)


def test_dilation_and_asymmetric_padding() -> None:
    c = Conv2d("d", in_channels=1, out_channels=1, in_h=10, in_w=10, kernel=3, dilation=2, padding=(0, 1, 1, 0))
    # effective kernel 5: out_h = (10 + 0 + 1 - 5) + 1 = 7, out_w = (10 + 1 + 0 - 5) + 1 = 7
    assert (c.out_h, c.out_w) == (7, 7)


def test_linear_matmul_pool_eltwise() -> None:
    lin = Linear("fc", in_features=768, out_features=3072, tokens=128)
    assert (lin.gemm().m, lin.gemm().n, lin.gemm().k) == (128, 3072, 768)
    mm = MatMul("qk", m=128, k=64, n=128, heads=12)
    assert mm.gemm(batch=2).repeats == 24 and mm.params == 0 and mm.macs() == 12 * 128 * 64 * 128
    p = Pool("p", channels=64, in_h=112, in_w=112, kernel=3, stride=2, padding=1)
    assert (p.out_h, p.out_w) == (56, 56) and p.vector_ops() == 64 * 56 * 56 * 9 and p.macs() == 0
    gp = Pool("gp", channels=1280, in_h=7, in_w=7, op="avg", global_=True)
    assert (gp.out_h, gp.out_w) == (1, 1) and gp.vector_ops() == 1280 * 49
    e = Eltwise("add", elements=1000)
    assert e.vector_ops(batch=3) == 3000


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Conv2d("x", in_channels=3, out_channels=8, in_h=4, in_w=4, kernel=5),
         "layer 'x': kernel (5, 5) does not fit input 4x4 with padding (0, 0, 0, 0)"),
        (lambda: Conv2d("x", in_channels=6, out_channels=8, in_h=4, in_w=4, groups=4),
         "layer 'x': groups must divide in_channels (6) and out_channels (8), not 4"),
        (lambda: Linear("x", in_features=0), "layer 'x': in_features must be a positive integer, not 0"),
        (lambda: Operand(bits=0), "bits must be an integer from 1 to 32, not 0"),
        (lambda: Operand(density=1.5), "density must be a number from 0 to 1, not 1.5"),
        (lambda: parse_sparsity("3:2"), "sparsity N:M needs 1 <= N <= M, not '3:2'"),
    ],
)
def test_bad_layers(make, message: str) -> None:
    with pytest.raises(WorkloadError) as e:
        make()
    assert str(e.value) == message


def test_operand_sparsity_specs() -> None:
    op = Operand().with_sparsity("2:4")
    assert op.pattern is Pattern.NM and op.density == 0.5 and op.nm == (2, 4) and op.sparsity_label == "2:4"
    assert Operand().with_sparsity(0.3).density == 0.3
    assert Operand(bits=4, signed=False).max_value == 15 and Operand(bits=4).min_value == -8


def test_network_rejects_duplicates() -> None:
    lin = Linear("a", in_features=4, out_features=4)
    with pytest.raises(WorkloadError, match="layer name 'a' appears twice"):
        Network("n", (lin, lin))


# Published MAC counts. Convention: multiply-accumulates of Conv and Linear layers only
# (pooling, element-wise, BatchNorm not counted), batch 1, 224x224 input.
@pytest.mark.parametrize(
    ("name", "published_macs", "rel_tol", "source"),
    [
        ("alexnet", 714e6, 0.005, "torchvision AlexNet, 0.71 GFLOPS (multiply-adds)"),
        ("resnet18", 1.814e9, 0.005, "torchvision ResNet-18, 1.81 GFLOPS; He et al. 2016: 1.8e9 FLOPs"),
        ("resnet50", 4.089e9, 0.005, "torchvision ResNet-50, 4.09 GFLOPS; He et al. 2016: 3.8e9 (v1)"),
        ("mobilenet_v2", 300e6, 0.01, "Sandler et al. CVPR 2018, Table 3: 300M multiply-adds"),
    ],
)
def test_first_zoo_macs(name: str, published_macs: float, rel_tol: float, source: str) -> None:
    assert zoo.get(name).macs == pytest.approx(published_macs, rel=rel_tol), source


def test_gemm_workload() -> None:
    net = zoo.get("gemm", m=100, n=37, k=53)
    assert net.macs == 100 * 37 * 53 and len(net) == 1
