"""Classic CNNs at 224x224: AlexNet, ResNet-18, ResNet-50, MobileNetV2 1.0, and bare GEMMs.

Shapes follow the torchvision definitions (the reference implementations most papers count
with). BatchNorm is folded into the preceding convolution, whose bias then holds it.
"""

from __future__ import annotations

from codesign.workloads.layers import Linear, Network
from codesign.workloads.zoo import NetBuilder, Tap, register


@register("alexnet", description="AlexNet (torchvision, 224x224, single tower)",
          source="Krizhevsky et al., NeurIPS 2012; torchvision alexnet: 0.71 GMAC, 61.1 M params",
          default_input="3x224x224")
def alexnet(batch: int = 1) -> Network:
    b = NetBuilder(3, 224, 224)
    b.conv("conv1", 64, 11, stride=4, padding=2, bias=True)
    b.pool("pool1", 3, 2)
    b.conv("conv2", 192, 5, padding=2, bias=True)
    b.pool("pool2", 3, 2)
    b.conv("conv3", 384, 3, bias=True)
    b.conv("conv4", 256, 3, bias=True)
    b.conv("conv5", 256, 3, bias=True)
    b.pool("pool5", 3, 2)
    b.linear("fc6", 4096)
    b.linear("fc7", 4096)
    b.linear("fc8", 1000)
    return b.network("alexnet", batch, (3, 224, 224), alexnet.__doc__ or "")


def _residual(b: NetBuilder, name: str, start: Tap, out: int, stride: int) -> None:
    """The add of a residual block whose main branch ends at the current map: the shortcut is the block's
    input, or a 1x1 downsample conv of it (which runs last, as in torchvision)."""
    main, shortcut = b.src, start.src
    if stride != 1 or start.c != out:
        b.resume(start)
        shortcut = b.conv(f"{name}.downsample", out, 1, stride=stride, padding=0, bias=True).name
    b.src = main
    b.add(f"{name}.add", other=shortcut)


def _basic_block(b: NetBuilder, name: str, out: int, stride: int) -> None:
    start = b.mark()
    b.conv(f"{name}.conv1", out, 3, stride=stride, bias=True)
    b.conv(f"{name}.conv2", out, 3, bias=True)
    _residual(b, name, start, out, stride)


def _bottleneck(b: NetBuilder, name: str, width: int, stride: int) -> None:
    start = b.mark()
    out = width * 4
    b.conv(f"{name}.conv1", width, 1, padding=0, bias=True)
    b.conv(f"{name}.conv2", width, 3, stride=stride, bias=True)
    b.conv(f"{name}.conv3", out, 1, padding=0, bias=True)
    _residual(b, name, start, out, stride)


def _resnet(name: str, blocks: list[int], bottleneck: bool, batch: int) -> Network:
    b = NetBuilder(3, 224, 224)
    b.conv("conv1", 64, 7, stride=2, padding=3, bias=True)
    b.pool("maxpool", 3, 2, padding=1)
    for stage, (n, width) in enumerate(zip(blocks, (64, 128, 256, 512), strict=True), start=1):
        for i in range(n):
            stride = 2 if (i == 0 and stage > 1) else 1
            if bottleneck:
                _bottleneck(b, f"layer{stage}.{i}", width, stride)
            else:
                _basic_block(b, f"layer{stage}.{i}", width, stride)
    b.global_pool("avgpool")
    b.linear("fc", 1000)
    return b.network(name, batch, (3, 224, 224))


@register("resnet18", description="ResNet-18 (torchvision, 224x224)",
          source="He et al., CVPR 2016; torchvision resnet18: 1.81 GMAC, 11.69 M params",
          default_input="3x224x224")
def resnet18(batch: int = 1) -> Network:
    return _resnet("resnet18", [2, 2, 2, 2], False, batch)


@register("resnet50", description="ResNet-50 v1.5 (torchvision, 224x224, stride on the 3x3)",
          source="He et al., CVPR 2016; torchvision resnet50: 4.09 GMAC, 25.56 M params",
          default_input="3x224x224")
def resnet50(batch: int = 1) -> Network:
    return _resnet("resnet50", [3, 4, 6, 3], True, batch)


def _make_divisible(v: float, divisor: int = 8) -> int:
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def inverted_residual(b: NetBuilder, name: str, out: int, stride: int, expand: int) -> None:
    """MobileNetV2 block: 1x1 expand (if expand > 1), 3x3 depthwise, 1x1 project, residual add."""
    cin, block_in = b.c, b.src
    hidden = cin * expand
    if expand != 1:
        b.conv(f"{name}.expand", hidden, 1, padding=0, bias=True)
    b.dwconv(f"{name}.dw", 3, stride=stride, bias=True)
    b.conv(f"{name}.project", out, 1, padding=0, bias=True)
    if stride == 1 and cin == out:
        b.add(f"{name}.add", other=block_in)


@register("mobilenet_v2", description="MobileNetV2 1.0 (224x224)",
          source="Sandler et al., CVPR 2018, Table 3: 300 M multiply-adds, 3.4 M params",
          default_input="3x224x224")
def mobilenet_v2(batch: int = 1, width: float = 1.0, resolution: int = 224) -> Network:
    b = NetBuilder(3, resolution, resolution)
    b.conv("conv_stem", _make_divisible(32 * width), 3, stride=2, bias=True)
    settings = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                (6, 320, 1, 1)]
    idx = 0
    for t, c, n, s in settings:
        out = _make_divisible(c * width)
        for i in range(n):
            inverted_residual(b, f"block{idx}", out, s if i == 0 else 1, t)
            idx += 1
    b.conv("conv_head", _make_divisible(1280 * max(1.0, width)), 1, padding=0, bias=True)
    b.global_pool("avgpool")
    b.linear("classifier", 1000)
    name = "mobilenet_v2" if (width, resolution) == (1.0, 224) else f"mobilenet_v2_{width:g}_{resolution}"
    return b.network(name, batch, (3, resolution, resolution))


@register("gemm", description="one GEMM [M,K] @ [K,N] (use gemm:M,N,K)", source="-", default_input="M,N,K")
def gemm(batch: int = 1, m: int = 64, n: int = 64, k: int = 64) -> Network:
    layer = Linear(f"gemm_{m}x{n}x{k}", in_features=k, out_features=n, tokens=m, bias=False)
    return Network(f"gemm_{m}x{n}x{k}", (layer,), batch=batch, input_shape=(m, k))


_VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


@register("vgg16", description="VGG-16 (configuration D, torchvision, 224x224, no BatchNorm)",
          source="Simonyan & Zisserman, ICLR 2015 (config D, 138 M params); "
                 "torchvision vgg16: 15.47 GFLOPS, 138,357,544 params",
          default_input="3x224x224")
def vgg16(batch: int = 1) -> Network:
    b = NetBuilder(3, 224, 224)
    conv = pool = 0
    for v in _VGG16:
        if v == "M":
            pool += 1
            b.pool(f"pool{pool}", 2, 2)
        else:
            conv += 1
            b.conv(f"conv{conv}", int(v), 3, padding=1, bias=True)
    b.linear("fc6", 4096)
    b.linear("fc7", 4096)
    b.linear("fc8", 1000)
    return b.network("vgg16", batch, (3, 224, 224))
