#!/usr/bin/python3
"""PyTorch oracle: writes reference fixtures for tests/test_oracle.cpp.

Usage: /usr/bin/python3 tests/oracle/make_fixtures.py <fixture_dir>

Runs with Debian's python3-torch (float64 throughout, fixed seed) and writes one
safetensors file per case into <fixture_dir>. The safetensors format is written by hand
(struct + json): 8-byte little-endian header length, JSON header padded with spaces to a
multiple of 8, raw little-endian data in the order the tensors are given; the writer is
save_safetensors in scripts/convert_inception.py, shared with the Inception converter. The
Python `safetensors` package is deliberately not used.

Each case stores its inputs, a random cotangent `gy`, the forward output and the gradients
(and, where it matters, gradients of gradients) that the C++ engine must reproduce.
"""
import math
import os
import sys

try:
    import numpy  # noqa: F401 (the writer's Tensor.numpy() needs it)
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

# The safetensors writer is scripts/convert_inception.py's (a DEPENDS of the fixtures in
# tests/CMakeLists.txt).
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
from convert_inception import save_safetensors  # noqa: E402


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


def unary_case(fn, x, **meta):
    """y = fn(x); first order of sum(y * gy); second order of h = |dx|^2 with respect to x
    and gy (zero in x for the piecewise-linear and linear ops: pooling)."""
    x = leaf(x)
    y = fn(x)
    gy = leaf(torch.randn_like(y))
    (dx,) = grad((y * gy).sum(), [x], create_graph=True)
    h = dx.square().sum()
    dh_dx, dh_dgy = grad(h, [x, gy])
    return dict(x=x, gy=gy, y=y, dx=dx, h=h, dh_dx=dh_dx, dh_dgy=dh_dgy), meta


def case_softsign():
    return unary_case(F.softsign, torch.randn(2, 5, 4, 3) * 2)


def case_conv_weight_sq_sums():
    # The demodulation's weight term, [O, C, kh, kw] -> [C, O]; 17 input channels take the
    # CPU kernel's 16-channel step and its one-by-one tail.
    return unary_case(lambda w: w.square().sum((2, 3)).t(), torch.randn(3, 17, 3, 3))


def case_max_pool2d():
    # Distinct values (a scaled permutation): each window's maximum is unique, so the choice,
    # and with it the gradient, is well defined (also after the cast to f32).
    shape = (2, 3, 9, 8)
    n = math.prod(shape)
    x = (torch.randperm(n).to(torch.float64) / n - 0.5).reshape(shape)
    return unary_case(lambda x: F.max_pool2d(x, 3, stride=2, padding=1), x, kernel=3, stride=2, padding=1)


def avg_pool_case(kernel, stride, padding, count_include_pad):
    return unary_case(
        lambda x: F.avg_pool2d(x, kernel, stride=stride, padding=padding, count_include_pad=count_include_pad),
        torch.randn(2, 3, 9, 8), kernel=kernel, stride=stride, padding=padding,
        count_include_pad=int(count_include_pad))


def case_avg_pool2d_pad_counted():
    return avg_pool_case(3, 2, 1, True)


def case_avg_pool2d_pad_uncounted():
    return avg_pool_case(3, 2, 1, False)


def case_avg_pool2d_k2():
    return avg_pool_case(2, 2, 0, True)


# ---- seed32: the seed 002 notebook's 32x32 model, as written there ---------------------------
# The notebook's classes, verbatim apart from docstrings (tests/oracle compares
# models/seed32.cpp with them); built small: fmap 4, z 16, w 16.
class NbPixelNorm(torch.nn.Module):
    def forward(self, x, eps=1e-8):
        return x * torch.rsqrt(torch.mean(x**2, dim=1, keepdim=True) + eps)


class NbMapping(torch.nn.Module):
    def __init__(self, z_dim, w_dim, n_layers=4):
        super().__init__()
        layers = [NbPixelNorm()]
        dim = z_dim
        for _ in range(n_layers):
            layers += [torch.nn.Linear(dim, w_dim), torch.nn.LeakyReLU(0.2, True)]
            dim = w_dim
        self.net = torch.nn.Sequential(*layers)

    def forward(self, z):  # [B, z_dim] -> [B, w_dim]
        return self.net(z)


class NbModulatedConv2d(torch.nn.Module):
    def __init__(self, in_ch, out_ch, w_dim, k=3, up=False, demod=True):
        super().__init__()
        self.in_ch, self.out_ch, self.k, self.up, self.demod = in_ch, out_ch, k, up, demod
        self.weight = torch.nn.Parameter(torch.randn(out_ch, in_ch, k, k) * 0.02)
        self.style = torch.nn.Linear(w_dim, in_ch)
        self.bias = torch.nn.Parameter(torch.zeros(out_ch))
        self.pad = k // 2

    def forward(self, x, w):
        B, C, H, W = x.shape
        if self.up:
            x = F.interpolate(x, scale_factor=2, mode='nearest')
            H, W = x.shape[-2:]
        s = self.style(w).view(B, 1, self.in_ch, 1, 1)  # [B,1,Cin,1,1]
        w_mod = self.weight.unsqueeze(0) * (s + 1.0)  # [B,Cout,Cin,k,k]
        if self.demod:
            d = torch.rsqrt((w_mod**2).sum(dim=[2, 3, 4], keepdim=True) + 1e-8)  # [B,Cout,1,1,1]
            w_mod = w_mod * d
        x = x.view(1, B * self.in_ch, H, W)
        w_mod = w_mod.view(B * self.out_ch, self.in_ch, self.k, self.k)
        out = F.conv2d(x, w_mod, padding=self.pad, groups=B)
        out = out.view(B, self.out_ch, H, W) + self.bias.view(1, -1, 1, 1)
        return out


def nb_lrelu(x):
    return F.leaky_relu(x, 0.2)


class NbSynthesisBlock(torch.nn.Module):
    def __init__(self, in_ch, out_ch, w_dim, up):
        super().__init__()
        self.conv1 = NbModulatedConv2d(in_ch, out_ch, w_dim, k=3, up=up, demod=True)
        self.conv2 = NbModulatedConv2d(out_ch, out_ch, w_dim, k=3, up=False, demod=True)
        self.toRGB = NbModulatedConv2d(out_ch, 3, w_dim, k=1, up=False, demod=False)

    def forward(self, x, w1, w2, rgb=None):
        x = nb_lrelu(self.conv1(x, w1))
        x = nb_lrelu(self.conv2(x, w2))
        rgb_new = self.toRGB(x, w2)
        rgb = rgb_new if rgb is None else F.interpolate(rgb, scale_factor=2, mode='nearest') + rgb_new
        return x, rgb


class NbGenerator(torch.nn.Module):
    """4x4 -> 8 -> 16 -> 32 with skip-to-RGB (StyleGAN2)"""

    def __init__(self, z_dim, w_dim, fmap):
        super().__init__()
        self.mapping = NbMapping(z_dim, w_dim)
        self.const = torch.nn.Parameter(torch.randn(1, fmap * 4, 4, 4))
        self.b4 = NbSynthesisBlock(fmap * 4, fmap * 4, w_dim, up=False)  # 4x4
        self.b8 = NbSynthesisBlock(fmap * 4, fmap * 2, w_dim, up=True)  # 8x8
        self.b16 = NbSynthesisBlock(fmap * 2, fmap, w_dim, up=True)  # 16x16
        self.b32 = NbSynthesisBlock(fmap, fmap // 2, w_dim, up=True)  # 32x32

    def forward(self, z, return_w=False):
        w = self.mapping(z)  # [B, w_dim]
        x = self.const.repeat(z.size(0), 1, 1, 1)
        rgb = None
        x, rgb = self.b4(x, w, w, rgb)
        x, rgb = self.b8(x, w, w, rgb)
        x, rgb = self.b16(x, w, w, rgb)
        x, rgb = self.b32(x, w, w, rgb)
        if return_w:
            return torch.tanh(rgb), w
        return torch.tanh(rgb)


class NbResBlockD(torch.nn.Module):
    def __init__(self, in_ch, out_ch, down=True):
        super().__init__()
        self.down = down
        self.conv1 = torch.nn.Conv2d(in_ch, out_ch, 3, 1, 1)
        self.conv2 = torch.nn.Conv2d(out_ch, out_ch, 3, 1, 1)
        self.skip = torch.nn.Conv2d(in_ch, out_ch, 1, 1, 0)

    def forward(self, x):
        h = nb_lrelu(self.conv1(x))
        h = nb_lrelu(self.conv2(h))
        if self.down:
            h = F.avg_pool2d(h, 2)
        s = self.skip(x)
        if self.down:
            s = F.avg_pool2d(s, 2)
        return (h + s) / math.sqrt(2)


class NbDiscriminator(torch.nn.Module):
    def __init__(self, fmap):
        super().__init__()
        c = fmap
        self.fromRGB = torch.nn.Conv2d(3, c // 2, 1)
        self.b32 = NbResBlockD(c // 2, c, down=True)
        self.b16 = NbResBlockD(c, c * 2, down=True)
        self.b8 = NbResBlockD(c * 2, c * 4, down=True)
        self.b4 = NbResBlockD(c * 4, c * 4, down=False)
        self.out = torch.nn.Linear(c * 4 * 4 * 4, 1)

    def forward(self, x):
        x = nb_lrelu(self.fromRGB(x))
        x = self.b32(x)
        x = self.b16(x)
        x = self.b8(x)
        x = self.b4(x)
        x = x.view(x.size(0), -1)
        return self.out(x).squeeze(1)


SEED32_FMAP, SEED32_Z, SEED32_W, SEED32_BATCH = 4, 16, 16, 4


def case_seed32():
    """The notebook's G and D (fmap 4, z 16, w 16, batch 4), with its R1 regularizer and its
    path-length penalty (pl_pen = (pl - pl_ema)^2 with a fixed pl_ema and fixed noise).
    Parameters are stored as G.<name> / D.<name> (the notebook's state_dict names); the
    notebook's zero-initialised modulated-conv biases are drawn nonzero so they are exercised."""
    G = NbGenerator(SEED32_Z, SEED32_W, SEED32_FMAP)
    D = NbDiscriminator(SEED32_FMAP)
    with torch.no_grad():
        for n, p in G.named_parameters():
            if n.endswith(".bias") and ".style." not in n and not n.startswith("mapping."):
                p.normal_(0, 0.1)
    gp = list(G.named_parameters())
    dp = list(D.named_parameters())
    n = SEED32_BATCH
    z = torch.randn(n, SEED32_Z)
    reals = torch.rand(n, 3, 32, 32) * 2 - 1

    # Forward: mapping, synthesis, D on fakes and reals.
    img, w = G(z, return_w=True)
    logits_fake = D(img)
    x = leaf(reals)
    logits_real = D(x)

    # R1 as the notebook's r1_regularizer, differentiated with respect to every D parameter.
    (r1_grads,) = grad(logits_real.sum(), [x], create_graph=True)
    r1 = r1_grads.pow(2).view(r1_grads.size(0), -1).sum(1).mean()
    d_r1 = grad(r1, [p for _, p in dp])

    # Path length as the notebook's path_length_reg, with the noise drawn here and kept; the
    # penalty (pl - pl_ema)^2 differentiated with respect to every G parameter (through w
    # into the mapping, as in the notebook).
    pl_noise = torch.randn_like(img) / math.sqrt(img.numel() / img.size(0))
    (pl_grads,) = grad((img * pl_noise).sum(), [w], create_graph=True)
    pl = pl_grads.pow(2).sum(1).sqrt().mean()
    pl_ema = torch.tensor(0.5) * pl.detach()
    pl_pen = (pl - pl_ema).pow(2)
    d_pl = grad(pl_pen, [p for _, p in gp])

    out = {}
    out.update({"G." + k: p for k, p in gp})
    out.update({"D." + k: p for k, p in dp})
    out.update(z=z, reals=reals, pl_noise=pl_noise, pl_ema=pl_ema, w=w, img=img, logits_fake=logits_fake,
               logits_real=logits_real, r1_grads=r1_grads, r1=r1, pl_grads=pl_grads, pl=pl, pl_pen=pl_pen)
    out.update({"d_r1_d_D." + k: g for (k, _), g in zip(dp, d_r1)})
    out.update({"d_pl_pen_d_G." + k: g for (k, _), g in zip(gp, d_pl)})
    return out, dict(fmap=SEED32_FMAP, z_dim=SEED32_Z, w_dim=SEED32_W, batch=SEED32_BATCH,
                     g_params=",".join(k for k, _ in gp), d_params=",".join(k for k, _ in dp))


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
    ("seed32", case_seed32),
    ("softsign", case_softsign),
    ("max_pool2d", case_max_pool2d),
    ("avg_pool2d_pad_counted", case_avg_pool2d_pad_counted),
    ("avg_pool2d_pad_uncounted", case_avg_pool2d_pad_uncounted),
    ("avg_pool2d_k2", case_avg_pool2d_k2),
    ("conv_weight_sq_sums", case_conv_weight_sq_sums),
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
        save_safetensors(os.path.join(out_dir, name + ".safetensors"), tensors, meta)
    print(f"make_fixtures.py: wrote {len(CASES)} fixtures to {out_dir} (torch {torch.__version__})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
