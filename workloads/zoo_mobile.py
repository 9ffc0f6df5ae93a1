"""Mobile CNNs: MobileNetV1, MobileNetV3, ShuffleNetV2, SqueezeNet 1.1, EfficientNet-B0, GhostNet, MCUNet.

Shapes follow the official definitions named in each ``source``. BatchNorm is folded into the
preceding convolution, whose bias then holds it (so a conv + BN of C channels counts C bias
parameters where the framework counts 2*C BN parameters). Squeeze-excite is a global average
pool, two 1x1 convolutions with bias on the 1x1 map (``<block>.se.fc1``, ``<block>.se.fc2``)
and an element-wise ``mul`` that scales the feature map.
"""

from __future__ import annotations

import math

from codesign.workloads.layers import Network
from codesign.workloads.zoo import NetBuilder, register
from codesign.workloads.zoo_cnn import _make_divisible


def tf_same(size: int, k: int, stride: int) -> tuple[int, int]:
    """TensorFlow/Keras ``padding='same'``: (before, after) padding of one spatial axis."""
    out = -(-size // stride)
    total = max((out - 1) * stride + k - size, 0)
    return total // 2, total - total // 2


def same_padding(b: NetBuilder, k: int | tuple[int, int], stride: int) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) of Keras ``padding='same'`` at the builder's current shape."""
    kh, kw = (k, k) if isinstance(k, int) else k
    t, bo = tf_same(b.h, kh, stride)
    le, r = tf_same(b.w, kw, stride)
    return (t, le, bo, r)


def squeeze_excite(b: NetBuilder, name: str, squeeze: int, act: str = "", gate_act: str = "") -> None:
    """SE block on the current feature map: pool, 1x1 conv (reduce, activation ``act``: '' for ReLU),
    1x1 conv (expand, activation ``gate_act``: sigmoid or hard_sigmoid), scale."""
    x = b.mark()
    b.global_pool(f"{name}.pool")
    b.conv(f"{name}.fc1", squeeze, 1, padding=0, bias=True, activation=act)
    gate = b.conv(f"{name}.fc2", x.c, 1, padding=0, bias=True, activation=gate_act).name
    b.resume(x)
    b.add(f"{name}.scale", op="mul", operand_elements=(x.c * x.h * x.w, x.c), other=gate)  # the scale is per channel


# -- MobileNetV1 ----------------------------------------------------------------------------------

_MBV1 = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1), (512, 1),
         (512, 1), (512, 1), (1024, 2), (1024, 1))


def mobilenet_v1_layers(b: NetBuilder, width: float, conv_bias: bool) -> None:
    """Stem and the 13 depthwise-separable blocks of MobileNetV1 with Keras 'same' padding."""
    b.conv("conv0", int(32 * width), 3, stride=2, padding=same_padding(b, 3, 2), bias=conv_bias)
    for i, (out, stride) in enumerate(_MBV1, start=1):
        b.conv(f"block{i}.dw", b.c, 3, stride=stride, padding=same_padding(b, 3, stride), groups=b.c,
               bias=conv_bias)
        b.conv(f"block{i}.pw", int(out * width), 1, padding=0, bias=conv_bias)


@register("mobilenet_v1", description="MobileNetV1 1.0 (224x224)",
          source="Howard et al., arXiv:1704.04861, Table 8: 569 M mult-adds, 4.2 M params "
                 "(Keras MobileNet alpha=1.0: 4,253,864 params with 4 per BN channel)",
          default_input="3x224x224")
def mobilenet_v1(batch: int = 1, width: float = 1.0, resolution: int = 224, classes: int = 1000) -> Network:
    b = NetBuilder(3, resolution, resolution)
    mobilenet_v1_layers(b, width, conv_bias=True)
    b.global_pool("avgpool")
    b.linear("fc", classes)
    name = "mobilenet_v1" if (width, resolution) == (1.0, 224) else f"mobilenet_v1_{width:g}_{resolution}"
    return b.network(name, batch, (3, resolution, resolution))


# -- MobileNetV3 ----------------------------------------------------------------------------------

# (kernel, expanded, out, use_se, stride) after the 16-channel stem; torchvision _mobilenet_v3_conf
_MBV3_LARGE = ((3, 16, 16, False, 1), (3, 64, 24, False, 2), (3, 72, 24, False, 1), (5, 72, 40, True, 2),
               (5, 120, 40, True, 1), (5, 120, 40, True, 1), (3, 240, 80, False, 2), (3, 200, 80, False, 1),
               (3, 184, 80, False, 1), (3, 184, 80, False, 1), (3, 480, 112, True, 1), (3, 672, 112, True, 1),
               (5, 672, 160, True, 2), (5, 960, 160, True, 1), (5, 960, 160, True, 1))
_MBV3_SMALL = ((3, 16, 16, True, 2), (3, 72, 24, False, 2), (3, 88, 24, False, 1), (5, 96, 40, True, 2),
               (5, 240, 40, True, 1), (5, 240, 40, True, 1), (5, 120, 48, True, 1), (5, 144, 48, True, 1),
               (5, 288, 96, True, 2), (5, 576, 96, True, 1), (5, 576, 96, True, 1))


def _mobilenet_v3(name: str, conf: tuple[tuple[int, int, int, bool, int], ...], last_channel: int,
                  batch: int, resolution: int, first_hs: int) -> Network:
    """Blocks from ``first_hs`` on use hard-swish (torchvision's "HS"), the ones before it ReLU ("RE");
    the stem, the last convolution and the first classifier layer hard-swish; SE gates hard-sigmoid."""
    hs = "hard_swish"
    b = NetBuilder(3, resolution, resolution)
    b.conv("conv_stem", 16, 3, stride=2, bias=True, activation=hs)
    for i, (k, expanded, out, use_se, stride) in enumerate(conf):
        cin, block_in = b.c, b.src
        blk = f"block{i}"
        act = hs if i >= first_hs else ""
        if expanded != cin:
            b.conv(f"{blk}.expand", expanded, 1, padding=0, bias=True, activation=act)
        b.dwconv(f"{blk}.dw", k, stride=stride, bias=True, activation=act)
        if use_se:
            squeeze_excite(b, f"{blk}.se", _make_divisible(expanded // 4, 8), gate_act="hard_sigmoid")
        b.conv(f"{blk}.project", out, 1, padding=0, bias=True)
        if stride == 1 and cin == out:
            b.add(f"{blk}.add", other=block_in)
    b.conv("conv_head", 6 * b.c, 1, padding=0, bias=True, activation=hs)
    b.global_pool("avgpool")
    b.linear("classifier.0", last_channel, activation=hs)
    b.linear("classifier.3", 1000)
    return b.network(name, batch, (3, resolution, resolution))


@register("mobilenet_v3_large", description="MobileNetV3-Large 1.0 (224x224, SE + h-swish)",
          source="Howard et al., ICCV 2019, Table 3: 219 M MAdds, 5.4 M params; "
                 "torchvision mobilenet_v3_large: 0.22 GFLOPS, 5,483,032 params",
          default_input="3x224x224")
def mobilenet_v3_large(batch: int = 1, resolution: int = 224) -> Network:
    return _mobilenet_v3("mobilenet_v3_large", _MBV3_LARGE, 1280, batch, resolution, first_hs=6)


@register("mobilenet_v3_small", description="MobileNetV3-Small 1.0 (224x224, SE + h-swish)",
          source="Howard et al., ICCV 2019, Table 3: 56 M MAdds, 2.5 M params (paper); "
                 "torchvision mobilenet_v3_small: 0.06 GFLOPS, 2,542,856 params",
          default_input="3x224x224")
def mobilenet_v3_small(batch: int = 1, resolution: int = 224) -> Network:
    return _mobilenet_v3("mobilenet_v3_small", _MBV3_SMALL, 1024, batch, resolution, first_hs=3)


# -- ShuffleNetV2 ---------------------------------------------------------------------------------


def _shuffle_unit(b: NetBuilder, name: str, out: int, stride: int) -> None:
    """ShuffleNetV2 unit; the channel split, concat and shuffle move data but compute nothing (the unit's
    output, concatenated from both branches, has no single producer)."""
    start = b.mark()
    bf = out // 2
    if stride > 1:
        b.dwconv(f"{name}.branch1.dw", 3, stride=stride, bias=True)
        b.conv(f"{name}.branch1.pw", bf, 1, padding=0, bias=True)
        b.resume(start)
    else:
        b.concat(start.c // 2)  # the split half of the shuffled input
    b.conv(f"{name}.branch2.pw1", bf, 1, padding=0, bias=True)
    b.dwconv(f"{name}.branch2.dw", 3, stride=stride, bias=True)
    b.conv(f"{name}.branch2.pw2", bf, 1, padding=0, bias=True)
    b.concat(out)


@register("shufflenet_v2", description="ShuffleNetV2 1.0x (224x224)",
          source="Ma et al., ECCV 2018, Table 5: 146 M FLOPs (multiply-adds), 2.3 M params; "
                 "torchvision shufflenet_v2_x1_0: 0.14 GFLOPS, 2,278,604 params",
          default_input="3x224x224")
def shufflenet_v2(batch: int = 1, resolution: int = 224) -> Network:
    b = NetBuilder(3, resolution, resolution)
    b.conv("conv1", 24, 3, stride=2, bias=True)
    b.pool("maxpool", 3, 2, padding=1)
    for stage, (repeats, out) in enumerate(((4, 116), (8, 232), (4, 464)), start=2):
        for i in range(repeats):
            _shuffle_unit(b, f"stage{stage}.{i}", out, 2 if i == 0 else 1)
    b.conv("conv5", 1024, 1, padding=0, bias=True)
    b.global_pool("avgpool")
    b.linear("fc", 1000)
    return b.network("shufflenet_v2", batch, (3, resolution, resolution))


# -- SqueezeNet 1.1 -------------------------------------------------------------------------------


def _fire(b: NetBuilder, name: str, squeeze: int, expand: int) -> None:
    b.conv(f"{name}.squeeze", squeeze, 1, padding=0, bias=True)
    sq = b.mark()
    b.conv(f"{name}.expand1x1", expand, 1, padding=0, bias=True)
    b.resume(sq)
    b.conv(f"{name}.expand3x3", expand, 3, padding=1, bias=True)
    b.concat(2 * expand)


@register("squeezenet1_1", description="SqueezeNet 1.1 (224x224, no BatchNorm)",
          source="Iandola et al., arXiv:1602.07360 (v1.1: 2.4x less computation than 1.0); "
                 "torchvision squeezenet1_1: 0.35 GFLOPS, 1,235,496 params",
          default_input="3x224x224")
def squeezenet1_1(batch: int = 1, resolution: int = 224) -> Network:
    b = NetBuilder(3, resolution, resolution)
    b.conv("conv1", 64, 3, stride=2, padding=0, bias=True)
    # ceil_mode pooling: the extra bottom/right row of ceil mode is asymmetric padding here
    b.pool("pool1", 3, 2, padding=_ceil_pad(b.h, 3, 2))
    _fire(b, "fire2", 16, 64)
    _fire(b, "fire3", 16, 64)
    b.pool("pool3", 3, 2, padding=_ceil_pad(b.h, 3, 2))
    _fire(b, "fire4", 32, 128)
    _fire(b, "fire5", 32, 128)
    b.pool("pool5", 3, 2, padding=_ceil_pad(b.h, 3, 2))
    _fire(b, "fire6", 48, 192)
    _fire(b, "fire7", 48, 192)
    _fire(b, "fire8", 64, 256)
    _fire(b, "fire9", 64, 256)
    b.conv("conv10", 1000, 1, padding=0, bias=True)
    b.global_pool("avgpool")
    return b.network("squeezenet1_1", batch, (3, resolution, resolution))


def _ceil_pad(size: int, k: int, stride: int) -> tuple[int, int, int, int]:
    """Padding that makes floor-mode pooling produce ceil-mode's output size (square maps)."""
    extra = (stride - (size - k) % stride) % stride
    return (0, 0, extra, extra)


# -- EfficientNet-B0 ------------------------------------------------------------------------------

# (expand, kernel, stride, out, repeats); torchvision _efficientnet_conf("efficientnet_b0")
_EFFNET_B0 = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3), (6, 5, 1, 112, 3),
              (6, 5, 2, 192, 4), (6, 3, 1, 320, 1))


@register("efficientnet_b0", description="EfficientNet-B0 (224x224, MBConv + SE + SiLU)",
          source="Tan & Le, ICML 2019, Table 2: 0.39 B FLOPs (multiply-adds), 5.3 M params; "
                 "torchvision efficientnet_b0: 0.39 GFLOPS, 5,288,548 params",
          default_input="3x224x224")
def efficientnet_b0(batch: int = 1, resolution: int = 224) -> Network:
    b = NetBuilder(3, resolution, resolution)
    b.conv("conv_stem", 32, 3, stride=2, bias=True, activation="silu")
    idx = 0
    for expand, k, stride, out, repeats in _EFFNET_B0:
        for i in range(repeats):
            cin, block_in = b.c, b.src
            blk = f"block{idx}"
            s = stride if i == 0 else 1
            if expand != 1:
                b.conv(f"{blk}.expand", cin * expand, 1, padding=0, bias=True, activation="silu")
            b.dwconv(f"{blk}.dw", k, stride=s, bias=True, activation="silu")
            squeeze_excite(b, f"{blk}.se", max(1, cin // 4), act="silu", gate_act="sigmoid")
            b.conv(f"{blk}.project", out, 1, padding=0, bias=True)
            if s == 1 and cin == out:
                b.add(f"{blk}.add", other=block_in)
            idx += 1
    b.conv("conv_head", 1280, 1, padding=0, bias=True, activation="silu")
    b.global_pool("avgpool")
    b.linear("classifier", 1000)
    return b.network("efficientnet_b0", batch, (3, resolution, resolution))


# -- GhostNet 1.0 ---------------------------------------------------------------------------------

# (kernel, expanded, out, se_ratio, stride); huawei-noah ghostnet.py cfgs
_GHOSTNET = ((3, 16, 16, 0.0, 1), (3, 48, 24, 0.0, 2), (3, 72, 24, 0.0, 1), (5, 72, 40, 0.25, 2),
             (5, 120, 40, 0.25, 1), (3, 240, 80, 0.0, 2), (3, 200, 80, 0.0, 1), (3, 184, 80, 0.0, 1),
             (3, 184, 80, 0.0, 1), (3, 480, 112, 0.25, 1), (3, 672, 112, 0.25, 1), (5, 672, 160, 0.25, 2),
             (5, 960, 160, 0.0, 1), (5, 960, 160, 0.25, 1), (5, 960, 160, 0.0, 1), (5, 960, 160, 0.25, 1))


def _ghost_module(b: NetBuilder, name: str, out: int) -> None:
    """Primary 1x1 conv to ceil(out/2) channels, cheap 3x3 depthwise to the rest, concat."""
    init = math.ceil(out / 2)
    b.conv(f"{name}.primary", init, 1, padding=0, bias=True)
    b.conv(f"{name}.cheap", init, 3, padding=1, groups=init, bias=True)
    b.concat(out)  # [primary, cheap][:out]


@register("ghostnet", description="GhostNet 1.0x (224x224)",
          source="Han et al., CVPR 2020, Table 7: 141 M FLOPs (multiply-adds), 5.2 M params; "
                 "official huawei-noah ghostnet.py width=1.0",
          default_input="3x224x224")
def ghostnet(batch: int = 1, width: float = 1.0, resolution: int = 224) -> Network:
    b = NetBuilder(3, resolution, resolution)
    b.conv("conv_stem", _make_divisible(16 * width, 4), 3, stride=2, bias=True)
    for i, (k, exp, out, se_ratio, stride) in enumerate(_GHOSTNET):
        blk = f"block{i}"
        start = b.mark()
        cin = start.c
        mid = _make_divisible(exp * width, 4)
        out_c = _make_divisible(out * width, 4)
        _ghost_module(b, f"{blk}.ghost1", mid)
        if stride > 1:
            b.dwconv(f"{blk}.dw", k, stride=stride, bias=True)
        if se_ratio:
            squeeze_excite(b, f"{blk}.se", _make_divisible(mid * se_ratio, 4), gate_act="hard_sigmoid")
        _ghost_module(b, f"{blk}.ghost2", out_c)
        main, shortcut = b.mark(), start.src
        if not (cin == out_c and stride == 1):
            b.resume(start)
            b.dwconv(f"{blk}.shortcut.dw", k, stride=stride, bias=True)
            shortcut = b.conv(f"{blk}.shortcut.pw", out_c, 1, padding=0, bias=True).name
        b.resume(main)
        b.add(f"{blk}.add", other=shortcut)
    b.conv("conv_last", _make_divisible(960 * width, 4), 1, padding=0, bias=True)
    b.global_pool("avgpool")
    b.conv("conv_head", 1280, 1, padding=0, bias=True)
    b.linear("classifier", 1000)
    name = "ghostnet" if (width, resolution) == (1.0, 224) else f"ghostnet_{width:g}_{resolution}"
    return b.network(name, batch, (3, resolution, resolution))


# -- MCUNet ---------------------------------------------------------------------------------------

# mcunet-in2 ("mcunet-256kb-1mb_imagenet", 160x160): (in, out, kernel, stride, mid) per
# MBInvertedConvLayer of the released TinyNAS net config; mid == in means no expansion conv.
_MCUNET_IN2 = ((16, 8, 3, 1, 16), (8, 16, 5, 2, 24), (16, 16, 7, 1, 96), (16, 16, 3, 1, 80),
               (16, 16, 5, 1, 80), (16, 24, 3, 2, 80), (24, 24, 7, 1, 144), (24, 24, 5, 1, 144),
               (24, 40, 7, 2, 96), (40, 40, 5, 1, 200), (40, 48, 3, 1, 200), (48, 48, 5, 1, 240),
               (48, 48, 3, 1, 192), (48, 96, 5, 2, 288), (96, 96, 5, 1, 384), (96, 96, 5, 1, 288),
               (96, 96, 3, 1, 384), (96, 160, 5, 1, 480))


@register("mcunet_in2", description="MCUNet mcunet-in2 / mcunet-256kB (ImageNet, 160x160, TinyNAS)",
          source="Lin et al., NeurIPS 2020; mit-han-lab/mcunet model zoo mcunet-256kB "
                 "(mcunet-256kb-1mb_imagenet.json): 67.3 M MACs, 0.73 M params",
          default_input="3x160x160")
def mcunet_in2(batch: int = 1) -> Network:
    b = NetBuilder(3, 160, 160)
    b.conv("first_conv", 16, 3, stride=2, bias=True)
    for i, (cin, out, k, stride, mid) in enumerate(_MCUNET_IN2):
        blk, block_in = f"block{i}", b.src
        if mid != cin:  # expand_ratio 1: no inverted bottleneck
            b.conv(f"{blk}.expand", mid, 1, padding=0, bias=True)
        b.dwconv(f"{blk}.dw", k, stride=stride, bias=True)
        b.conv(f"{blk}.project", out, 1, padding=0, bias=True)
        if stride == 1 and cin == out:
            b.add(f"{blk}.add", other=block_in)
    b.global_pool("avgpool")
    b.linear("classifier", 1000)
    return b.network("mcunet_in2", batch, (3, 160, 160))
