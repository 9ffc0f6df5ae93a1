"""``digits_cnn``: a small CNN trained on scikit-learn's bundled digits (1,797 8x8 images, no download).

Every layer runs on the GEMM accelerator: three 3x3 convolutions (the second and third strided
instead of pooled) and one Linear, ReLU after each conv (folded into the requantization clamp),
the flatten before the Linear a layout change (HWC order)::

    conv1  1x8x8  -> 8x8x8    k3 s1 p1   M=64   K=9    N=8
    conv2  8x8x8  -> 16x4x4   k3 s2 p1   M=16   K=72   N=16
    conv3  16x4x4 -> 16x2x2   k3 s2 p1   M=4    K=144  N=16
    fc     64     -> 10                  M=1    K=64   N=10

Data: ``sklearn.datasets.load_digits`` in file order; the first 75 % (1,348 images) train and
calibrate, the last 25 % (449) test. Inputs are the pixel intensities 0..16 divided by 16.

The float weights ship in ``data/digits_cnn.npz``; :func:`train` (numpy only, seeded) makes
them in a few seconds: ``python bench/train_digits_cnn.py`` rewrites the file.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np

from codesign.errors import WorkloadError
from codesign.workloads import trained
from codesign.workloads.layers import Conv2d, Layer, Network
from codesign.workloads.zoo import NetBuilder, register

NAME = "digits_cnn"
WEIGHTS_FILE = "digits_cnn.npz"
TEST_FRACTION = 0.25
PIXEL_MAX = 16.0  # load_digits intensities are integers 0..16
SOURCE = ("scikit-learn load_digits (UCI optical recognition of handwritten digits, 1,797 8x8 images); "
          "trained with codesign.workloads.digits.train (numpy, seed 0)")


@register(NAME, description="small CNN for scikit-learn's 8x8 digits (3 convs + linear, trained weights shipped)",
          source=SOURCE, default_input="1x8x8")
def digits_cnn(batch: int = 1) -> Network:
    b = NetBuilder(1, 8, 8)
    b.conv("conv1", 8, 3, stride=1, padding=1, bias=True)
    b.conv("conv2", 16, 3, stride=2, padding=1, bias=True)
    b.conv("conv3", 16, 3, stride=2, padding=1, bias=True)
    b.linear("fc", 10, bias=True)
    return b.network(NAME, batch, (1, 8, 8), source=SOURCE)


ACTIVATIONS = {"conv1": "relu", "conv2": "relu", "conv3": "relu", "fc": "none"}


def load_dataset() -> trained.Dataset:
    """The digits split: first 75 % train, last 25 % test; ``x`` raw intensities ``[n, 1, 8, 8]``."""
    try:
        from sklearn.datasets import load_digits
    except ModuleNotFoundError as e:
        raise WorkloadError("the digits data needs scikit-learn (pip install 'codesign[accuracy]')") from e
    d = load_digits()
    x = np.asarray(d.images, dtype=np.float64).reshape(-1, 1, 8, 8)
    y = np.asarray(d.target, dtype=np.int64)
    n_test = round(len(x) * TEST_FRACTION)
    cut = len(x) - n_test
    return trained.Dataset(x[:cut], y[:cut], x[cut:], y[cut:], name="sklearn digits")


def prepare(x_raw: np.ndarray) -> np.ndarray:
    """Raw intensities 0..16 (``[n, 1, 8, 8]``, ``[n, 8, 8]`` or ``[n, 64]``) -> the network's inputs."""
    x = np.asarray(x_raw, dtype=np.float64)
    if x.ndim < 2 or x[0].size != 64:
        raise WorkloadError(f"digits inputs must be 8x8 images ([n, 1, 8, 8], [n, 8, 8] or [n, 64]), "
                            f"not shape {list(x.shape)}")
    return x.reshape(-1, 1, 8, 8) / PIXEL_MAX


def weights_path() -> Path:
    return Path(str(resources.files("codesign.workloads") / "data" / WEIGHTS_FILE))


@trained.register(NAME)
def load_trained(path: str | Path | None = None) -> trained.TrainedNetwork:
    net = digits_cnn()
    params = trained.load_params(path or weights_path(), net)
    return trained.TrainedNetwork(net, params, ACTIVATIONS, dataset=load_dataset, input_from_raw=prepare,
                                  finetune=finetune, source=SOURCE)


# -- training (numpy, deterministic) --------------------------------------------------------


def _col2im(dcols: np.ndarray, layer: Conv2d, batch: int) -> np.ndarray:
    """The adjoint of :func:`codesign.workloads.tensors.im2col` (gradient w.r.t. the input)."""
    pt, pl, pb, pr = layer.padding  # type: ignore[misc]
    sh, sw = layer.stride  # type: ignore[misc]
    g, c, r, s, oh, ow = layer.groups, layer.in_channels, layer.r, layer.s, layer.out_h, layer.out_w
    cols = dcols.reshape(g, batch, oh, ow, c // g, r, s).transpose(1, 0, 4, 5, 6, 2, 3).reshape(batch, c, r, s, oh, ow)
    dxp = np.zeros((batch, c, layer.in_h + pt + pb, layer.in_w + pl + pr))
    for ky in range(r):
        for kx in range(s):
            dxp[:, :, ky : ky + sh * (oh - 1) + 1 : sh, kx : kx + sw * (ow - 1) + 1 : sw] += cols[:, :, ky, kx]
    return dxp[:, :, pt : pt + layer.in_h, pl : pl + layer.in_w]


def _init(layers: tuple[Layer, ...], rng: np.random.Generator) -> dict[str, list[np.ndarray]]:
    params = {}
    for layer in layers:
        shape = trained.weight_shape(layer)
        fan_in = int(np.prod(shape[1:]))
        w = rng.normal(0.0, np.sqrt(2.0 / fan_in), size=shape)
        params[layer.name] = [w, np.zeros(shape[0])]
    return params


def _step(layers: tuple[Layer, ...], params: dict[str, list[np.ndarray]], x: np.ndarray, y: np.ndarray
          ) -> tuple[float, dict[str, list[np.ndarray]]]:
    """Cross-entropy loss and gradients of one batch (forward and backward by hand)."""
    batch = x.shape[0]
    cache = []
    h = x
    for layer in layers:
        w, b = params[layer.name]
        a = trained.lower_input(layer, h)
        c = np.matmul(a, trained.weight_matrix(layer, w)) + trained.bias_matrix(layer, b)
        out = trained.raise_output(layer, c, batch)
        act = ACTIVATIONS[layer.name]
        cache.append((layer, h, a, out))
        h = np.maximum(out, 0.0) if act == "relu" else out
    z = h - h.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    loss = float(-np.log(p[np.arange(batch), y] + 1e-12).mean())
    grad = p
    grad[np.arange(batch), y] -= 1.0
    grad /= batch
    grads: dict[str, list[np.ndarray]] = {}
    for layer, h_in, a, out in reversed(cache):
        if ACTIVATIONS[layer.name] == "relu":
            grad = grad * (out > 0)
        w, _ = params[layer.name]
        if isinstance(layer, Conv2d):
            g = layer.groups
            # [batch, N, oh, ow] -> [groups, M, N/groups] in the GEMM's row order (batch, oy, ox)
            dc = grad.reshape(batch, g, -1, layer.out_h, layer.out_w).transpose(1, 0, 3, 4, 2)
            dc = dc.reshape(g, batch * layer.out_h * layer.out_w, -1)
        else:
            dc = grad[None]
        db = np.matmul(a.transpose(0, 2, 1), dc)  # [g, K, N/g]
        if isinstance(layer, Conv2d):
            dw = db.transpose(0, 2, 1).reshape(w.shape)
            dbias = dc.sum(axis=1).reshape(-1)
        else:
            dw = db[0].T
            dbias = dc[0].sum(axis=0)
        grads[layer.name] = [dw, dbias]
        da = np.matmul(dc, trained.weight_matrix(layer, w).transpose(0, 2, 1))  # [g, M, K]
        if isinstance(layer, Conv2d):
            grad = _col2im(da, layer, batch)
        else:
            grad = da[0]
            if h_in.ndim == 4:  # undo the HWC flatten
                _, c, hh, ww = h_in.shape
                grad = grad.reshape(batch, hh, ww, c).transpose(0, 3, 1, 2)
    return loss, grads


def _shift(x: np.ndarray, rng: np.random.Generator, pixels: int) -> np.ndarray:
    """Each image moved by a random whole number of pixels in ``[-pixels, pixels]`` (zero fill)."""
    out = np.zeros_like(x)
    pad = np.pad(x, ((0, 0), (0, 0), (pixels, pixels), (pixels, pixels)))
    dy = rng.integers(-pixels, pixels, size=len(x), endpoint=True)
    dx = rng.integers(-pixels, pixels, size=len(x), endpoint=True)
    h, w = x.shape[2:]
    for i in range(len(x)):
        y0, x0 = pixels + dy[i], pixels + dx[i]
        out[i] = pad[i, :, y0 : y0 + h, x0 : x0 + w]
    return out


def train(seed: int = 0, epochs: int = 30, batch_size: int = 32, lr: float = 5e-3,
          weight_decay: float = 3e-4, shift_pixels: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Train digits_cnn with Adam on the training split (seeded; numpy float64, a few seconds).

    Augmentation: every batch is shifted by up to ``shift_pixels`` pixels."""
    net = digits_cnn()
    rng = np.random.default_rng(seed)
    params = _init(net.layers, rng)
    _fit(net.layers, params, rng, epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
         shift_pixels=shift_pixels)
    return {k: (vs[0].astype(np.float32), vs[1].astype(np.float32)) for k, vs in params.items()}


def finetune(params: dict[str, tuple[np.ndarray, np.ndarray]], epochs: int, seed: int = 0, lr: float = 1e-3
             ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Fine-tune pruned weights with their zeros kept zero (masked Adam, cosine decay, seeded)."""
    net = digits_cnn()
    work = {k: [np.asarray(w, dtype=np.float64).copy(), np.asarray(b, dtype=np.float64).copy()]
            for k, (w, b) in params.items()}
    masks = {k: (vs[0] != 0).astype(np.float64) for k, vs in work.items()}
    _fit(net.layers, work, np.random.default_rng(seed), epochs=epochs, batch_size=32, lr=lr, weight_decay=3e-4,
         shift_pixels=0, masks=masks)
    return {k: (vs[0], vs[1]) for k, vs in work.items()}


def _fit(layers: tuple[Layer, ...], params: dict[str, list[np.ndarray]], rng: np.random.Generator, *, epochs: int,
         batch_size: int, lr: float, weight_decay: float, shift_pixels: int,
         masks: dict[str, np.ndarray] | None = None) -> None:
    """Adam on the training split, in place; ``masks`` keep pruned weights at zero."""
    data = load_dataset()
    x, y = prepare(data.x_train), data.y_train
    m = {k: [np.zeros_like(v) for v in vs] for k, vs in params.items()}
    v2 = {k: [np.zeros_like(v) for v in vs] for k, vs in params.items()}
    b1, b2, eps, t = 0.9, 0.999, 1e-8, 0
    for epoch in range(epochs):
        order = rng.permutation(len(x))
        rate = lr * 0.5 * (1 + np.cos(np.pi * epoch / epochs))  # cosine decay
        for start in range(0, len(x), batch_size):
            idx = order[start : start + batch_size]
            xb = _shift(x[idx], rng, shift_pixels) if shift_pixels else x[idx]
            _, grads = _step(layers, params, xb, y[idx])
            t += 1
            for name, gs in grads.items():
                for i, gr in enumerate(gs):
                    if i == 0:
                        gr = gr + weight_decay * params[name][0]
                    m[name][i] = b1 * m[name][i] + (1 - b1) * gr
                    v2[name][i] = b2 * v2[name][i] + (1 - b2) * gr * gr
                    mh = m[name][i] / (1 - b1**t)
                    vh = v2[name][i] / (1 - b2**t)
                    params[name][i] = params[name][i] - rate * mh / (np.sqrt(vh) + eps)
                if masks is not None:
                    params[name][0] = params[name][0] * masks[name]


def save(params: dict[str, tuple[np.ndarray, np.ndarray]], path: str | Path) -> None:
    """An ``.npz`` of ``<layer>.weight`` / ``<layer>.bias``, byte-identical for identical weights
    (fixed zip timestamps, unlike ``np.savez``)."""
    import io
    import zipfile

    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, (w, b) in params.items():
            for key, arr in ((f"{name}.weight", w), (f"{name}.bias", b)):
                buf = io.BytesIO()
                np.lib.format.write_array(buf, np.ascontiguousarray(arr), allow_pickle=False)
                info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, buf.getvalue())
