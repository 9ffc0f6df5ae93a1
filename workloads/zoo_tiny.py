"""MLPerf Tiny v0.5 reference models: DS-CNN (KWS), MobileNetV1-0.25 (VWW), ResNet-8 (IC), FC autoencoder (AD).

Shapes follow the Keras reference definitions of mlcommons/tiny (``benchmark/training/*``),
including Keras ``padding='same'`` (asymmetric where TensorFlow pads it so). Reference convs
keep their bias *and* are followed by BatchNorm; the BN is folded into that bias, so parameters
here are the Keras trainable weights minus the BN scale/shift (Keras counts 4 per BN channel).
"""

from __future__ import annotations

import itertools

from codesign.workloads.layers import Linear, Network
from codesign.workloads.zoo import NetBuilder, register
from codesign.workloads.zoo_mobile import mobilenet_v1_layers, same_padding


@register("ds_cnn_kws", description="MLPerf Tiny keyword spotting DS-CNN (49x10 MFCC, 12 classes)",
          source="Banbury et al., MLPerf Tiny, NeurIPS 2021 D&B (from Zhang et al., Hello Edge, "
                 "arXiv:1711.07128, DS-CNN-S); mlcommons/tiny keyword_spotting keras_model.py: "
                 "2,656,768 MACs, 22,604 conv/dense params (+2,304 BN)",
          default_input="1x49x10")
def ds_cnn_kws(batch: int = 1, filters: int = 64, classes: int = 12) -> Network:
    b = NetBuilder(1, 49, 10)
    b.conv("conv1", filters, (10, 4), stride=2, padding=same_padding(b, (10, 4), 2), bias=True)
    for i in range(1, 5):
        b.conv(f"ds{i}.dw", filters, 3, padding=same_padding(b, 3, 1), groups=filters, bias=True)
        b.conv(f"ds{i}.pw", filters, 1, padding=0, bias=True)
    b.global_pool("avgpool")  # AveragePooling2D(pool_size=(25, 5)) over the whole 25x5 map
    b.linear("fc", classes)
    return b.network("ds_cnn_kws", batch, (1, 49, 10))


@register("mobilenet_v1_vww", description="MLPerf Tiny visual wake words MobileNetV1 0.25 (96x96, 2 classes)",
          source="Banbury et al., MLPerf Tiny, NeurIPS 2021 D&B; Chowdhery et al., arXiv:1906.05721; "
                 "mlcommons/tiny visual_wake_words vww_model.py: 7,489,664 MACs, 210,850 params "
                 "(+10,944 BN: 221,794 in Keras)",
          default_input="3x96x96")
def mobilenet_v1_vww(batch: int = 1) -> Network:
    b = NetBuilder(3, 96, 96)
    mobilenet_v1_layers(b, 0.25, conv_bias=True)
    b.global_pool("avgpool")
    b.linear("fc", 2)
    return b.network("mobilenet_v1_vww", batch, (3, 96, 96))


@register("resnet8_cifar", description="MLPerf Tiny image classification ResNet-8 (CIFAR-10, 32x32)",
          source="Banbury et al., MLPerf Tiny, NeurIPS 2021 D&B; mlcommons/tiny v0.5 image_classification "
                 "keras_model.py resnet_v1_eembc (16 filters): 12,501,632 MACs, 77,706 params (+960 BN)",
          default_input="3x32x32")
def resnet8_cifar(batch: int = 1, filters: int = 16) -> Network:
    b = NetBuilder(3, 32, 32)
    b.conv("conv1", filters, 3, padding=same_padding(b, 3, 1), bias=True)
    for stack, mult in enumerate((1, 2, 4), start=1):
        start = b.mark()
        out, stride = filters * mult, 1 if stack == 1 else 2
        b.conv(f"stack{stack}.conv1", out, 3, stride=stride, padding=same_padding(b, 3, stride), bias=True)
        main = b.conv(f"stack{stack}.conv2", out, 3, padding=same_padding(b, 3, 1), bias=True)
        shortcut = start.src
        if stride != 1:
            b.resume(start)
            shortcut = b.conv(f"stack{stack}.shortcut", out, 1, stride=stride, padding=0, bias=True).name
            assert (b.h, b.w) == (main.out_h, main.out_w)
        b.src = main.name
        b.add(f"stack{stack}.add", other=shortcut)
    b.global_pool("avgpool")
    b.linear("fc", 10)
    return b.network("resnet8_cifar", batch, (3, 32, 32))


@register("fc_autoencoder", description="MLPerf Tiny anomaly detection FC autoencoder (640 inputs, ToyADMOS)",
          source="Banbury et al., MLPerf Tiny, NeurIPS 2021 D&B (DCASE 2020 task 2 baseline); "
                 "mlcommons/tiny anomaly_detection keras_model.py: 264,192 MACs, 265,864 params (+4,128 BN; "
                 "~270 k in the paper)",
          default_input="640")
def fc_autoencoder(batch: int = 1, inputs: int = 640, hidden: int = 128, bottleneck: int = 8) -> Network:
    dims = [inputs, hidden, hidden, hidden, hidden, bottleneck, hidden, hidden, hidden, hidden, inputs]
    layers = [Linear(f"dense{i + 1}", in_features=a, out_features=o, bias=True)
              for i, (a, o) in enumerate(itertools.pairwise(dims))]
    return Network("fc_autoencoder", tuple(layers), batch=batch, input_shape=(inputs,))
