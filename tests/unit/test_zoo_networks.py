"""Zoo networks against their published / official MAC and parameter counts.

Convention (workloads.layers): MACs count Conv2d / Linear / MatMul only; parameters count
Conv2d and Linear weights and biases, with BatchNorm folded into the conv bias. A framework
counts 2 parameters per BN channel (PyTorch: weight + bias) or 4 (Keras: + moving mean/var,
non-trainable) where we count 1 (the folded bias), so for BN networks:

    torchvision params == ours + bn_channels        keras params == ours + 3 * bn_channels
    (convs that hide no BN, such as squeeze-excite 1x1 convs, keep their real bias). The MLPerf
    Tiny Keras references keep a real conv bias *and* a BN, so there keras == ours + 4 * bn_channels.

Every test names its source and states its tolerance; "exact" means equality.
"""

from __future__ import annotations

import pytest

from codesign.errors import WorkloadError
from codesign.workloads import zoo
from codesign.workloads.layers import Conv2d, Eltwise, Linear, MatMul, Network, Pool


def bn_channels(net: Network, *, exclude: tuple[str, ...] = (".se.",)) -> int:
    """Output channels of the convs whose bias is a folded BatchNorm."""
    return sum(
        layer.out_channels
        for layer in net
        if isinstance(layer, Conv2d) and layer.bias and not any(x in layer.name for x in exclude)
    )


def rel(a: float, b: float) -> float:
    return abs(a - b) / b


# -- torchvision definitions: parameters exact, MACs to the published rounding ---------------------

# name, torchvision params (exact, torchvision model docs), BN-free?, published MACs, tolerance, source
TORCHVISION = [
    ("vgg16", 138_357_544, True, 15.47e9, 0.005e9, "torchvision vgg16: 15.47 GFLOPS"),
    ("squeezenet1_1", 1_235_496, True, 0.35e9, 0.005e9, "torchvision squeezenet1_1: 0.35 GFLOPS"),
    ("mobilenet_v3_large", 5_483_032, False, 219e6, 0.02 * 219e6,
     "Howard et al. ICCV 2019 Table 3: 219 M MAdds (torchvision: 0.22 GFLOPS)"),
    ("mobilenet_v3_small", 2_542_856, False, 56e6, 0.02 * 56e6,
     "Howard et al. ICCV 2019 Table 3: 56 M MAdds (torchvision: 0.06 GFLOPS)"),
    ("shufflenet_v2", 2_278_604, False, 146e6, 0.02 * 146e6,
     "Ma et al. ECCV 2018 Table 5: 146 M FLOPs (torchvision: 0.14 GFLOPS)"),
    ("efficientnet_b0", 5_288_548, False, 0.39e9, 0.02 * 0.39e9,
     "Tan & Le ICML 2019 Table 2: 0.39 B FLOPs (torchvision: 0.39 GFLOPS)"),
]


@pytest.mark.parametrize(("name", "tv_params", "bn_free", "macs", "tol", "source"), TORCHVISION,
                         ids=[t[0] for t in TORCHVISION])
def test_torchvision_networks(name: str, tv_params: int, bn_free: bool, macs: float, tol: float,
                              source: str) -> None:
    net = zoo.get(name)
    folded = 0 if bn_free else bn_channels(net)
    assert net.params + folded == tv_params  # exact, torchvision parameter count
    assert abs(net.macs - macs) <= tol, source


def test_torchvision_exact_macs() -> None:
    """Pinned MAC counts (ours), which the rounded published figures above bracket."""
    expected = {
        "vgg16": 15_470_264_320, "squeezenet1_1": 349_151_936, "mobilenet_v3_large": 216_589_760,
        "mobilenet_v3_small": 56_510_400, "shufflenet_v2": 144_907_992, "efficientnet_b0": 385_814_752,
    }
    assert {n: zoo.get(n).macs for n in expected} == expected


def test_mobilenet_v1() -> None:
    """Howard et al. 2017 Table 8: 569 M mult-adds, 4.2 M params; Keras MobileNet(alpha=1.0):
    4,253,864 params (conv weights, 4 per BN channel, classifier conv with bias). MACs within
    0.1 % of 569 M; params exact against Keras."""
    net = zoo.get("mobilenet_v1")
    assert net.macs == 568_740_352
    assert rel(net.macs, 569e6) < 0.001
    assert net.params + 3 * bn_channels(net) == 4_253_864
    assert rel(net.params, 4.2e6) < 0.01


def test_ghostnet() -> None:
    """Han et al. CVPR 2020 Table 7: GhostNet 1.0x 141 M FLOPs, 5.2 M params. Official
    huawei-noah definition with PyTorch BN: 5,183,788 params. MACs within 0.5 %, params within 0.5 %
    of the paper's rounded 5.2 M."""
    net = zoo.get("ghostnet")
    assert net.params + bn_channels(net) == 5_183_788
    assert rel(net.macs, 141e6) < 0.005
    assert rel(net.params + bn_channels(net), 5.2e6) < 0.005


def test_mcunet_in2() -> None:
    """mit-han-lab/mcunet README model list, mcunet-256kB (mcunet-in2, 160x160): 67.3 M MACs,
    0.73 M params; within the table's rounding (0.05 M MACs, 0.005 M params)."""
    net = zoo.get("mcunet_in2")
    assert abs(net.macs - 67.3e6) <= 0.05e6
    assert abs(net.params + bn_channels(net) - 0.73e6) <= 0.005e6
    assert net.input_shape == (3, 160, 160)


def test_resnet_and_mobilenet_v2_unchanged() -> None:
    """Foundation networks: torchvision resnet18 11,689,512 and mobilenet_v2 3,504,872 params
    (exact, BN accounted); ResNet-18 1.81 GMAC, MobileNetV2 300 M (Sandler et al. Table 3)."""
    r18 = zoo.get("resnet18")
    assert r18.params + bn_channels(r18) == 11_689_512
    mb2 = zoo.get("mobilenet_v2")
    assert mb2.params + bn_channels(mb2) == 3_504_872
    assert abs(mb2.macs - 300e6) < 0.01 * 300e6


# -- MLPerf Tiny (Keras references of mlcommons/tiny) ---------------------------------------------


def test_ds_cnn_kws() -> None:
    """MLPerf Tiny KWS DS-CNN, reference keras_model.py (49x10x1 MFCC, 64 filters, 12 classes):
    conv 10x4/2 'same' (pads 4/5 rows, 1/1 cols) -> 25x5; 4 x (dw 3x3 + pw 1x1); avgpool; dense.
    MACs = 25*5*64*40 + 4*(25*5*64*9 + 25*5*64*64) + 64*12 = 2,656,768 (the ~2.7 M of Hello Edge
    DS-CNN-S); params = 2,624 + 4*(640 + 4,160) + 780 = 22,604 exact."""
    net = zoo.get("ds_cnn_kws")
    conv1 = net.layer("conv1")
    assert isinstance(conv1, Conv2d)
    assert conv1.padding == (4, 1, 5, 1) and (conv1.out_h, conv1.out_w) == (25, 5)
    assert net.macs == 2_656_768
    assert net.params == 22_604
    assert net.params + 4 * bn_channels(net) == 22_604 + 2_304  # Keras total: bias and 4 per BN channel


def test_mobilenet_v1_vww() -> None:
    """MLPerf Tiny VWW MobileNetV1 alpha 0.25 at 96x96x3, 2 classes, convs with bias + BN (reference
    vww_model.py): 7,489,664 MACs; 210,850 params, 221,794 in Keras with 4 per BN channel (exact)."""
    net = zoo.get("mobilenet_v1_vww")
    assert net.macs == 7_489_664
    assert net.params == 210_850
    assert net.params + 4 * bn_channels(net) == 221_794
    last = net.layer("block13.pw")
    assert isinstance(last, Conv2d) and (last.out_channels, last.out_h) == (256, 3)


def test_resnet8_cifar() -> None:
    """MLPerf Tiny IC ResNet-8 (resnet_v1_eembc, 16 filters, CIFAR-10): 3 stacks of 2 3x3 convs,
    1x1 stride-2 shortcuts on stacks 2 and 3. MACs 12,501,632 (the 12.5 M MACs of MLPerf Tiny);
    params 77,706 + 960 BN (Keras 78,666), exact."""
    net = zoo.get("resnet8_cifar")
    assert net.macs == 12_501_632
    assert net.params == 77_706
    assert net.params + 4 * bn_channels(net, exclude=("shortcut",)) == 78_666


def test_fc_autoencoder() -> None:
    """MLPerf Tiny AD FC autoencoder: 640-128-128-128-128-8-128-128-128-128-640 dense layers.
    MACs 264,192 exact; params 265,864 + 4,128 BN = 269,992 (the paper's ~270 k, within 0.01 %)."""
    net = zoo.get("fc_autoencoder")
    assert net.macs == 264_192
    assert net.params == 265_864
    assert rel(net.params + 4 * 8 * 128 + 4 * 8, 270e3) < 1e-4


# -- transformers ---------------------------------------------------------------------------------


def test_deit_tiny() -> None:
    """timm deit_tiny_patch16_224: 5,717,416 params = our Linear/Conv 5,669,800 + pos-embed 197*192
    + cls 192 + 25 LayerNorms * 384 (exact). DeiT paper: 1.3 GFLOPs; 1,253,683,200 MACs is within
    4 % (patch embed 28.9 M + 12 blocks * 102.0 M + head 0.19 M)."""
    net = zoo.get("deit_tiny")
    assert net.params + 197 * 192 + 192 + 25 * 2 * 192 == 5_717_416
    assert net.macs == 1_253_683_200
    assert rel(net.macs, 1.3e9) < 0.04
    scores = net.layer("blocks.0.attn.scores")
    assert isinstance(scores, MatMul) and (scores.m, scores.k, scores.n, scores.heads) == (197, 64, 197, 3)


@pytest.mark.parametrize("seq_len", [128, 384])
def test_bert_base_layer(seq_len: int) -> None:
    """HF bert-base-uncased encoder layer: 7,087,872 params = 7,084,800 Linear + 2 LayerNorms of
    768 * 2 (exact); 12 layers + embeddings = BERT-base's 110 M (Devlin et al. 2019).
    MACs = S * 7,077,888 + 2 * 12 * S * S * 64 (exact)."""
    net = zoo.get("bert_base_layer", seq_len=seq_len)
    assert net.params + 2 * 2 * 768 == 7_087_872
    assert net.macs == seq_len * 7_077_888 + 2 * 12 * seq_len * seq_len * 64
    embeddings = (30522 + 512 + 2) * 768 + 2 * 768
    pooler = 768 * 768 + 768
    assert 12 * 7_087_872 + embeddings + pooler == 109_482_240  # HF bert-base-uncased total


def test_llama32_1b_layer() -> None:
    """Meta Llama-3.2-1B (HF config: hidden 2048, FFN 8192, 32 heads, 8 KV heads, 16 layers, tied
    embeddings 128,256 x 2048): total 1,235,814,400 params = 16 * (layer + 2 RMSNorm of 2048)
    + embeddings + final norm (exact)."""
    net = zoo.get("llama3_2_1b_prefill", seq_len=512)
    layer = net.params
    assert layer == 2 * 2048 * 2048 + 2 * 2048 * 512 + 3 * 2048 * 8192 == 60_817_408
    assert 16 * (layer + 2 * 2048) + 128_256 * 2048 + 2048 == 1_235_814_400
    k = net.layer("self_attn.k_proj")
    assert isinstance(k, Linear) and k.out_features == 512  # GQA: 8 KV heads of 64
    assert net.macs == 512 * layer + 2 * 32 * 512 * 512 * 64  # prefill: S tokens, S x S scores


def test_llama2_7b_layer() -> None:
    """Llama-2-7B (HF config: hidden 4096, FFN 11008, 32 heads, 32 layers, vocab 32,000 untied):
    total 6,738,415,616 params (exact)."""
    net = zoo.get("llama2_7b_prefill", seq_len=256)
    layer = net.params
    assert layer == 202_375_168
    assert 32 * (layer + 2 * 4096) + 2 * 32_000 * 4096 + 4096 == 6_738_415_616
    assert net.macs == 256 * layer + 2 * 32 * 256 * 256 * 128


@pytest.mark.parametrize(("name", "params", "heads", "hd"), [
    ("llama3_2_1b_decode", 60_817_408, 32, 64), ("llama2_7b_decode", 202_375_168, 32, 128)])
def test_llama_decode(name: str, params: int, heads: int, hd: int) -> None:
    """Decode: one token; every weight read once (MACs = params), attention over kv_len keys."""
    net = zoo.get(name, kv_len=1000)
    assert net.macs == params + 2 * heads * 1000 * hd
    scores = net.layer("self_attn.scores")
    assert isinstance(scores, MatMul) and (scores.m, scores.k, scores.n) == (1, hd, 1000)
    assert all(isinstance(layer, Linear) and layer.tokens == 1 for layer in net if isinstance(layer, Linear))


def test_llama_prefill_with_cache() -> None:
    net = zoo.get("llama3_2_1b_prefill", seq_len=128, kv_len=640)
    ctx = net.layer("self_attn.context")
    assert isinstance(ctx, MatMul) and (ctx.m, ctx.k, ctx.n) == (128, 640, 64)
    assert net.name == "llama3_2_1b_prefill_s128_kv640"


def test_llama_bad_kwargs() -> None:
    with pytest.raises(WorkloadError, match=r"^kv_len must be at least the 128 query tokens, not 64$"):
        zoo.get("llama3_2_1b_prefill", seq_len=128, kv_len=64)
    with pytest.raises(WorkloadError, match=r"^seq_len must be a positive integer, not 0$"):
        zoo.get("bert_base_layer", seq_len=0)


# -- structure ------------------------------------------------------------------------------------


def test_squeeze_excite_structure() -> None:
    """SE = global pool, 1x1 reduce, 1x1 expand (both with bias), element-wise mul of the map."""
    net = zoo.get("mobilenet_v3_large")
    pool, fc1, fc2, scale = (net.layer(f"block3.se.{p}") for p in ("pool", "fc1", "fc2", "scale"))
    assert isinstance(pool, Pool) and pool.global_ and pool.channels == 72
    assert isinstance(fc1, Conv2d) and (fc1.in_channels, fc1.out_channels, fc1.in_h) == (72, 24, 1)
    assert isinstance(fc2, Conv2d) and (fc2.in_channels, fc2.out_channels) == (24, 72)
    assert isinstance(scale, Eltwise) and scale.op.value == "mul" and scale.elements == 72 * 28 * 28


@pytest.mark.parametrize("name", zoo.names())
def test_every_entry_builds_and_is_documented(name: str) -> None:
    entry = zoo.entry(name)
    assert entry.description and entry.source
    net = entry.builder()
    assert net.macs > 0 and len(net) > 0
    assert net.with_batch(2).macs == 2 * net.macs


def test_expected_entries_registered() -> None:
    expected = {"mobilenet_v1", "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large", "shufflenet_v2",
                "squeezenet1_1", "efficientnet_b0", "ghostnet", "mcunet_in2", "resnet18", "resnet50", "alexnet",
                "vgg16", "ds_cnn_kws", "mobilenet_v1_vww", "resnet8_cifar", "fc_autoencoder", "deit_tiny",
                "bert_base_layer", "llama3_2_1b_prefill", "llama3_2_1b_decode", "llama2_7b_prefill",
                "llama2_7b_decode"}
    assert expected <= set(zoo.names())
