#!/usr/bin/python3
"""PyTorch oracle: writes reference fixtures for tests/test_oracle.cpp.

Usage: /usr/bin/python3 tests/oracle/make_fixtures.py <fixture_dir>

Runs with Debian's python3-torch (float64 throughout, fixed seed) and writes one
safetensors file per case into <fixture_dir>. The safetensors format is written by hand
(struct + json): 8-byte little-endian header length, JSON header padded with spaces to a
multiple of 8, raw little-endian data in the order the tensors are given. The Python
`safetensors` package is deliberately not used.

Each case stores its inputs, a random cotangent `gy`, the forward output and the gradients
(and, where it matters, gradients of gradients) that the C++ engine must reproduce.
"""
import json
import math
import os
import struct
import sys

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
except ImportError as e:  # pragma: no cover
    sys.stderr.write(
        "make_fixtures.py: PyTorch (and numpy) are required to write the oracle fixtures; "
        f"{sys.executable} cannot import them: {e}\n"
        "Install Debian's python3-torch (apt-get install python3-torch) and re-run the build.\n")
    sys.exit(2)

torch.set_default_dtype(torch.float64)
SQRT2 = math.sqrt(2.0)


# ---- safetensors, by hand ------------------------------------------------------------------
def save(path, tensors, metadata=None):
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs = []
    offset = 0
    for name, t in tensors.items():
        t = t.detach().to("cpu").contiguous()
        if t.dtype == torch.float64:
            dt, npdt = "F64", "<f8"
        elif t.dtype == torch.float32:
            dt, npdt = "F32", "<f4"
        else:
            raise TypeError(f"{path}: tensor {name}: unsupported dtype {t.dtype}")
        b = t.numpy().astype(npdt, copy=False).tobytes()
        header[name] = {"dtype": dt, "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def grad(outputs, inputs, grad_outputs=None, create_graph=False):
    """torch.autograd.grad that turns unused inputs into zeros."""
    gs = torch.autograd.grad(outputs, inputs, grad_outputs=grad_outputs, create_graph=create_graph,
                             allow_unused=True)
    return [torch.zeros_like(i) if g is None else g for g, i in zip(gs, inputs)]


def leaf(t):
    return t.detach().clone().requires_grad_(True)


# ---- references --------------------------------------------------------------------------------
def upfirdn2d_ref(x, f, up=1, down=1, pad=(0, 0, 0, 0), gain=1.0, flip_filter=False):
    """The reference way: zero-insert upsample, pad (negative crops), true convolution with f
    (i.e. conv2d with the flipped filter unless flip_filter), stride = down, times gain.
    f is 1-D (separable: outer(f, f)) or 2-D. pad = (x0, x1, y0, y1)."""
    if f.ndim == 1:
        f = torch.outer(f, f)
    n, c, h, w = x.shape
    x = x.reshape(n, c, h, 1, w, 1)
    x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
    x = x.reshape(n, c, h * up, w * up)
    x0, x1, y0, y1 = pad
    x = F.pad(x, [max(x0, 0), max(x1, 0), max(y0, 0), max(y1, 0)])
    x = x[:, :, max(-y0, 0): x.shape[2] - max(-y1, 0), max(-x0, 0): x.shape[3] - max(-x1, 0)]
    f = f * gain
    if not flip_filter:
        f = f.flip([0, 1])
    weight = f[None, None].repeat(c, 1, 1, 1).to(x.dtype)
    return F.conv2d(x, weight, stride=down, groups=c)


def fir_1331():
    f = torch.tensor([1.0, 3.0, 3.0, 1.0])
    return f / f.sum()


def modconv_ref(x, weight, styles, demodulate, up, padding, f=None):
    """StyleGAN2's fused (grouped) modulated convolution."""
    b, cin, h, w_ = x.shape
    cout, _, kh, kw = weight.shape
    w = weight[None] * styles[:, None, :, None, None]  # [B, Cout, Cin, kh, kw]
    if demodulate:
        d = (w.square().sum([2, 3, 4]) + 1e-8).rsqrt()
        w = w * d[:, :, None, None, None]
    xg = x.reshape(1, b * cin, h, w_)
    if up == 1:
        y = F.conv2d(xg, w.reshape(b * cout, cin, kh, kw), padding=padding, groups=b)
    else:
        # conv2d_resample, up=2, padding p: transposed conv (weight per group transposed to
        # [Cin, Cout]), stride 2, padding 0, then the FIR filter with pad (p, p, p, p), gain 4.
        assert up == 2 and kh == 3 and padding == 1
        wt = w.transpose(1, 2).reshape(b * cin, cout, kh, kw)
        y = F.conv_transpose2d(xg, wt, stride=2, padding=0, groups=b)
        y = upfirdn2d_ref(y, f, pad=(1, 1, 1, 1), gain=4.0)
    return y.reshape(b, cout, y.shape[2], y.shape[3])


# ---- cases ---------------------------------------------------------------------------------------
def conv_like_case(fn, x, w, **meta):
    """y = fn(x, w); first order of sum(y * gy); second order of h = |dx|^2 + |dw|^2."""
    x, w = leaf(x), leaf(w)
    y = fn(x, w)
    gy = leaf(torch.randn_like(y))
    dx, dw = grad((y * gy).sum(), [x, w], create_graph=True)
    h = dx.square().sum() + dw.square().sum()
    dh_dx, dh_dw, dh_dgy = grad(h, [x, w, gy])
    return dict(x=x, w=w, gy=gy, y=y, dx=dx, dw=dw, h=h, dh_dx=dh_dx, dh_dw=dh_dw, dh_dgy=dh_dgy), meta


def case_conv2d_grouped():
    return conv_like_case(lambda x, w: F.conv2d(x, w, stride=2, padding=1, groups=2),
                          torch.randn(2, 4, 7, 9), torch.randn(6, 2, 3, 3) / math.sqrt(18),
                          stride="2,2", padding="1,1", groups="2")


def case_conv2d_plain():
    return conv_like_case(lambda x, w: F.conv2d(x, w, stride=1, padding=(1, 0)),
                          torch.randn(2, 3, 6, 5), torch.randn(5, 3, 3, 2) / math.sqrt(18),
                          stride="1,1", padding="1,0", groups="1")


def case_conv_transpose2d():
    return conv_like_case(
        lambda x, w: F.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1, groups=2),
        torch.randn(2, 4, 5, 6), torch.randn(4, 3, 3, 3) / math.sqrt(18),
        stride="2,2", padding="1,1", output_padding="1,1", groups="2")


def upfirdn_case(f, up, down, pad, gain, shape=(2, 3, 9, 8)):
    x = leaf(torch.randn(*shape))
    y = upfirdn2d_ref(x, f, up=up, down=down, pad=pad, gain=gain)
    gy = torch.randn_like(y)
    (dx,) = grad(y, [x], grad_outputs=gy)
    meta = dict(up=up, down=down, pad=",".join(map(str, pad)), gain=gain)
    return dict(x=x, f=f, gy=gy, y=y, dx=dx), meta


def case_upfirdn2d_up2():
    return upfirdn_case(fir_1331(), 2, 1, (2, 1, 2, 1), 4.0)


def case_upfirdn2d_down2():
    return upfirdn_case(fir_1331(), 1, 2, (1, 1, 1, 1), 1.0)


def case_upfirdn2d_pad_asym():
    return upfirdn_case(fir_1331(), 1, 1, (2, 1, 1, 0), 1.0)


def case_upfirdn2d_filter2d():
    # A non-symmetric, non-separable 2-D filter: catches a missing or doubled filter flip.
    f = torch.rand(3, 4) + 0.1
    return upfirdn_case(f / f.sum(), 2, 2, (1, 2, 2, 1), 1.5)


def bias_act_case(clamp):
    x = leaf(torch.randn(2, 5, 4, 3))
    b = leaf(torch.randn(5) * 0.5)
    y = F.leaky_relu(x + b.view(1, -1, 1, 1), 0.2) * SQRT2
    if clamp is not None:
        y = y.clamp(-clamp, clamp)
    gy = leaf(torch.randn_like(y))
    dx, db = grad((y * gy).sum(), [x, b], create_graph=True)
    h = dx.square().sum()
    (dh_dgy,) = grad(h, [gy])
    return dict(x=x, b=b, gy=gy, y=y, dx=dx, db=db, h=h, dh_dgy=dh_dgy), dict(
        act="lrelu", alpha=0.2, gain=SQRT2, clamp=-1 if clamp is None else clamp)


def case_bias_act_clamp():
    return bias_act_case(0.5)


def case_bias_act_noclamp():
    return bias_act_case(None)


def modconv_case(demodulate, up):
    x = leaf(torch.randn(2, 4, 6, 6))
    weight = leaf(torch.randn(5, 4, 3, 3))
    styles = leaf(torch.randn(2, 4) * 0.5 + 1.0)
    f = fir_1331()
    y = modconv_ref(x, weight, styles, demodulate, up, 1, f)
    gy = torch.randn_like(y)
    dx, dweight, dstyles = grad(y, [x, weight, styles], grad_outputs=gy)
    return dict(x=x, weight=weight, styles=styles, f=f, gy=gy, y=y, dx=dx, dweight=dweight,
                dstyles=dstyles), dict(demodulate=int(demodulate), up=up, padding=1)


def case_modconv_demod():
    return modconv_case(True, 1)


def case_modconv_nodemod():
    return modconv_case(False, 1)


def case_modconv_up2():
    return modconv_case(True, 2)


def lrelu2(x):
    return F.leaky_relu(x, 0.2) * SQRT2


def case_r1():
    p = dict(
        w1=leaf(torch.randn(4, 3, 3, 3) / math.sqrt(27)),
        b1=leaf(torch.randn(4) * 0.1),
        w2=leaf(torch.randn(4, 4, 3, 3) / math.sqrt(36)),
        b2=leaf(torch.randn(4) * 0.1),
        w3=leaf(torch.randn(1, 64) / math.sqrt(64)),
        b3=leaf(torch.randn(1) * 0.1),
    )
    x = leaf(torch.randn(3, 3, 8, 8))

    def D(x):
        h = lrelu2(F.conv2d(x, p["w1"], padding=1) + p["b1"].view(1, -1, 1, 1))
        h = lrelu2(F.conv2d(h, p["w2"], stride=2, padding=1) + p["b2"].view(1, -1, 1, 1))
        return F.linear(h.flatten(1), p["w3"], p["b3"])

    logits = D(x)
    (r1_grads,) = grad(logits.sum(), [x], create_graph=True)
    r1 = r1_grads.square().sum([1, 2, 3]).mean()
    names = list(p)
    dparams = grad(r1, [p[n] for n in names])
    out = dict(p)
    out.update(x=x, logits=logits, r1_grads=r1_grads, r1=r1)
    out.update({"d_r1_d_" + n: g for n, g in zip(names, dparams)})
    return out, dict(lrelu_alpha=0.2, lrelu_gain=SQRT2)


def case_path_length():
    p = dict(
        affine_w=leaf(torch.randn(4, 8) / math.sqrt(8)),
        affine_b=leaf(1.0 + 0.1 * torch.randn(4)),
        const=leaf(torch.randn(1, 4, 4, 4)),
        conv_w=leaf(torch.randn(4, 4, 3, 3)),
        conv_b=leaf(torch.randn(4) * 0.1),
        rgb_affine_w=leaf(torch.randn(4, 8) / math.sqrt(8)),
        rgb_affine_b=leaf(1.0 + 0.1 * torch.randn(4)),
        rgb_w=leaf(torch.randn(3, 4, 1, 1) / 2.0),
    )
    w = leaf(torch.randn(3, 8))
    pl_noise = torch.randn(3, 3, 4, 4) / math.sqrt(4 * 4)

    def G(w):
        styles = F.linear(w, p["affine_w"], p["affine_b"])
        x = p["const"].repeat(3, 1, 1, 1)
        x = modconv_ref(x, p["conv_w"], styles, True, 1, 1)
        x = lrelu2(x + p["conv_b"].view(1, -1, 1, 1))
        rgb_styles = F.linear(w, p["rgb_affine_w"], p["rgb_affine_b"])
        return modconv_ref(x, p["rgb_w"], rgb_styles, False, 1, 0)

    img = G(w)
    (pl_grads,) = grad((img * pl_noise).sum(), [w], create_graph=True)
    pl_lengths = pl_grads.square().sum(1).sqrt()
    loss = (pl_lengths - 0.5).square().mean()
    names = list(p)
    gs = grad(loss, [p[n] for n in names] + [w])
    out = dict(p)
    out.update(w=w, pl_noise=pl_noise, img=img, pl_grads=pl_grads, pl_lengths=pl_lengths, loss=loss)
    out.update({"d_loss_d_" + n: g for n, g in zip(names + ["w"], gs)})
    return out, dict(pl_target=0.5)


CASES = [
    ("conv2d_grouped", case_conv2d_grouped),
    ("conv2d_plain", case_conv2d_plain),
    ("conv_transpose2d", case_conv_transpose2d),
    ("upfirdn2d_up2", case_upfirdn2d_up2),
    ("upfirdn2d_down2", case_upfirdn2d_down2),
    ("upfirdn2d_pad_asym", case_upfirdn2d_pad_asym),
    ("upfirdn2d_filter2d", case_upfirdn2d_filter2d),
    ("bias_act_clamp", case_bias_act_clamp),
    ("bias_act_noclamp", case_bias_act_noclamp),
    ("modconv_demod", case_modconv_demod),
    ("modconv_nodemod", case_modconv_nodemod),
    ("modconv_up2", case_modconv_up2),
    ("r1", case_r1),
    ("path_length", case_path_length),
]


def main(argv):
    if len(argv) != 2:
        sys.stderr.write(f"usage: {argv[0]} <fixture_dir>\n")
        return 2
    out_dir = argv[1]
    os.makedirs(out_dir, exist_ok=True)
    for i, (name, fn) in enumerate(CASES):
        torch.manual_seed(1234 + i)  # per case, so adding a case does not change the others
        tensors, meta = fn()
        meta = dict(meta, case=name, torch=torch.__version__, generator="tests/oracle/make_fixtures.py")
        save(os.path.join(out_dir, name + ".safetensors"), tensors, meta)
    print(f"make_fixtures.py: wrote {len(CASES)} fixtures to {out_dir} (torch {torch.__version__})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
