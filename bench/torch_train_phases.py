#!/usr/bin/python3
"""PyTorch twin of bench/bench_train_phases.cpp: the same five training phases, same protocol,
same output format. Default: the CPU, the seed-002 notebook's model with its modulated convs
on the modulate-activations path (--modconv act), f32, batch 32.

On the CPU run it with Debian's python3 (python3-torch), not a pyenv/venv python:
    OMP_NUM_THREADS=2 /usr/bin/python3 bench/torch_train_phases.py [--quick] [--modconv act|grouped]
On a GPU (the GPU run kit's run.sh, scripts/gpu-kit-run.sh):
    python3 bench/torch_train_phases.py --device cuda --cfg paper256 --batch 8 --modconv act [--quick]

Options: --device cpu|cuda (default cpu); --cfg seed32|paper256 (default seed32); --batch N
(default 32); --modconv act|grouped: the modulated convs as the modulate-activations path
stylegan2-ada-pytorch trains with, y = conv(x * styles, weight) * dcoefs (one conv with the
shared weight; dcoefs = rsqrt(styles^2 @ sum_k(weight^2)^T + 1e-8)), or as one grouped conv
(the notebook's ModulatedConv2d, stylegan2-ada's fused_modconv); same numbers, different cost.
Default act, the main reference of bench/run_train_bench.sh, which runs both. --precision
f32|tf32|bf16|bf16-mixed (CUDA; the twin of stylegrad's --precision): TF32 allowed in cuBLAS and
cuDNN, or each phase under torch.autocast(dtype=torch.bfloat16) with TF32 allowed (how a PyTorch
user trains in bf16), or (paper256 only) bf16-mixed: the G and D blocks at resolution >=
max(R / 8, 8) under autocast bf16 and f32 elsewhere, as stylegan2-ada casts its 4 highest
resolutions to fp16 (conv_clamp 256 is paper256's anyway).

seed32: the notebook's Mapping (pixel norm + 4 x Linear/LeakyReLU), ModulatedConv2d (styles =
Linear(w) + 1, nearest upsampling, demodulation; one grouped conv as in the notebook with
--modconv grouped, the modulate-activations path with act), SynthesisBlock, Generator
(4 -> 32, skip toRGB, tanh), ResBlockD and Discriminator, with the notebook's final cfg:
fmap 96, w_dim 192, z_dim 128, 3 image channels. Adam(lr 2e-4, betas (0, 0.99)).
paper256: stylegan2-ada-pytorch's networks with its paper256 cfg (z/w 512, 8 mapping layers
with lr x0.01, channel_base 16384, channel_max 512, skip G, resnet D with minibatch stddev
group 8, conv_clamp 256), written with the reference (pure PyTorch) upfirdn2d and bias_act of
bench/torch_cuda_kernels.py, not ada's custom CUDA kernels. Same Adam.

Phases (as the stylegrad twin; gradients are taken with torch.autograd.grad wrt the stepped
network's parameters only, sanitized in place with nan_to_num(nan 0, +-inf +-1e5) as
stylegan2-ada-pytorch's training loop does (and stylegrad's, whose twin times it in its Adam
lap too), set as .grad, then opt.step(), like the engine's training loop):
  G_forward  G(z) under torch.no_grad()
  D_step     fake = G(z) under no_grad; softplus(-D(real)).mean() + softplus(D(fake)).mean();
             grads wrt D params; Adam step
  G_step     softplus(-D(G(z))).mean(); grads wrt G params; Adam step
  R1_step    the notebook's r1_regularizer(real, D(real)) (grad wrt reals, create_graph),
             loss = r1_gamma/2 * r1; grads wrt D params; Adam step
  PL_step    G on batch // 2 (= the notebook's min(16, batch)), return_w; the notebook's
             path_length_reg(img, w) (grad of sum(img * noise) wrt the mapping output w,
             create_graph); pl_pen = (pl - pl_ema)^2; grads wrt G params; Adam step
             (paper256: ada's pl_lengths over ws [N, num_ws, w_dim], noise / sqrt(H * W))
Protocol: `warmup` untimed runs, then the median of `reps` timed runs (time.perf_counter);
`# breakdown` lines give the median of each sub-step lap. On CUDA every lap ends with
torch.cuda.synchronize(), warmup is 2, cudnn.benchmark is on and TF32 off (f32 as stylegrad)
unless --precision says otherwise.
Output: one line per phase,  phase=<name> impl=torch ms=<median ms>
Lines starting with '#' are information (threads, BLAS, device).
"""
import argparse
import contextlib
import math
import os
import statistics
import subprocess
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

import torch_cuda_kernels as tck  # the reference upfirdn2d and modulated conv (bench/)

DEV = torch.device("cpu")


class Cfg:
    img = 32
    z_dim = 128
    w_dim = 192
    fmap = 96
    batch = 32
    lr = 2e-4
    betas = (0.0, 0.99)
    r1_gamma = 0.5
    pl_weight = 1.0


cfg = Cfg()


# ---- the notebook's model ------------------------------------------------------------------
class PixelNorm(nn.Module):
    def forward(self, x, eps=1e-8):
        return x * torch.rsqrt(torch.mean(x**2, dim=1, keepdim=True) + eps)


class Mapping(nn.Module):
    def __init__(self, z_dim, w_dim, n_layers=4):
        super().__init__()
        layers = [PixelNorm()]
        dim = z_dim
        for _ in range(n_layers):
            layers += [nn.Linear(dim, w_dim), nn.LeakyReLU(0.2, True)]
            dim = w_dim
        self.net = nn.Sequential(*layers)

    def forward(self, z):
        return self.net(z)


class ModulatedConv2d(nn.Module):
    def __init__(self, in_ch, out_ch, w_dim, k=3, up=False, demod=True, fused=True):
        super().__init__()
        self.in_ch, self.out_ch, self.k, self.up, self.demod, self.fused = in_ch, out_ch, k, up, demod, fused
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, k, k) * 0.02)
        self.style = nn.Linear(w_dim, in_ch)
        self.bias = nn.Parameter(torch.zeros(out_ch))
        self.pad = k // 2

    def forward(self, x, w):
        B, C, H, W = x.shape
        if self.up:
            x = F.interpolate(x, scale_factor=2, mode='nearest')
            H, W = x.shape[-2:]
        if not self.fused:  # modulate-activations path (not the notebook's): conv(x * s, weight) * dcoefs
            s = self.style(w) + 1.0
            out = F.conv2d(x * s.view(B, self.in_ch, 1, 1), self.weight, padding=self.pad)
            if self.demod:
                d = torch.rsqrt(s.square() @ self.weight.square().sum(dim=[2, 3]).t() + 1e-8)
                out = out * d.view(B, self.out_ch, 1, 1)
            return out + self.bias.view(1, -1, 1, 1)
        s = self.style(w).view(B, 1, self.in_ch, 1, 1)
        w_mod = self.weight.unsqueeze(0) * (s + 1.0)
        if self.demod:
            d = torch.rsqrt((w_mod**2).sum(dim=[2, 3, 4], keepdim=True) + 1e-8)
            w_mod = w_mod * d
        x = x.view(1, B * self.in_ch, H, W)
        w_mod = w_mod.view(B * self.out_ch, self.in_ch, self.k, self.k)
        out = F.conv2d(x, w_mod, padding=self.pad, groups=B)
        out = out.view(B, self.out_ch, H, W) + self.bias.view(1, -1, 1, 1)
        return out


def lrelu(x):
    return F.leaky_relu(x, 0.2)


class SynthesisBlock(nn.Module):
    def __init__(self, in_ch, out_ch, w_dim, up, fused=True):
        super().__init__()
        self.conv1 = ModulatedConv2d(in_ch, out_ch, w_dim, k=3, up=up, demod=True, fused=fused)
        self.conv2 = ModulatedConv2d(out_ch, out_ch, w_dim, k=3, up=False, demod=True, fused=fused)
        self.toRGB = ModulatedConv2d(out_ch, 3, w_dim, k=1, up=False, demod=False, fused=fused)

    def forward(self, x, w1, w2, rgb=None):
        x = lrelu(self.conv1(x, w1))
        x = lrelu(self.conv2(x, w2))
        rgb_new = self.toRGB(x, w2)
        rgb = rgb_new if rgb is None else F.interpolate(rgb, scale_factor=2, mode='nearest') + rgb_new
        return x, rgb


class Generator(nn.Module):
    def __init__(self, z_dim, w_dim, fmap, fused=True):
        super().__init__()
        self.mapping = Mapping(z_dim, w_dim)
        self.const = nn.Parameter(torch.randn(1, fmap * 4, 4, 4))
        self.b4 = SynthesisBlock(fmap * 4, fmap * 4, w_dim, up=False, fused=fused)
        self.b8 = SynthesisBlock(fmap * 4, fmap * 2, w_dim, up=True, fused=fused)
        self.b16 = SynthesisBlock(fmap * 2, fmap, w_dim, up=True, fused=fused)
        self.b32 = SynthesisBlock(fmap, fmap // 2, w_dim, up=True, fused=fused)

    def forward(self, z, return_w=False):
        w = self.mapping(z)
        x = self.const.repeat(z.size(0), 1, 1, 1)
        rgb = None
        x, rgb = self.b4(x, w, w, rgb)
        x, rgb = self.b8(x, w, w, rgb)
        x, rgb = self.b16(x, w, w, rgb)
        x, rgb = self.b32(x, w, w, rgb)
        if return_w:
            return torch.tanh(rgb), w
        return torch.tanh(rgb)


class ResBlockD(nn.Module):
    def __init__(self, in_ch, out_ch, down=True):
        super().__init__()
        self.down = down
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, 1, 1)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1)
        self.skip = nn.Conv2d(in_ch, out_ch, 1, 1, 0)

    def forward(self, x):
        h = lrelu(self.conv1(x))
        h = lrelu(self.conv2(h))
        if self.down:
            h = F.avg_pool2d(h, 2)
        s = self.skip(x)
        if self.down:
            s = F.avg_pool2d(s, 2)
        return (h + s) / math.sqrt(2)


class Discriminator(nn.Module):
    def __init__(self, fmap):
        super().__init__()
        c = fmap
        self.fromRGB = nn.Conv2d(3, c // 2, 1)
        self.b32 = ResBlockD(c // 2, c, down=True)
        self.b16 = ResBlockD(c, c * 2, down=True)
        self.b8 = ResBlockD(c * 2, c * 4, down=True)
        self.b4 = ResBlockD(c * 4, c * 4, down=False)
        self.out = nn.Linear(c * 4 * 4 * 4, 1)

    def forward(self, x):
        x = lrelu(self.fromRGB(x))
        x = self.b32(x)
        x = self.b16(x)
        x = self.b8(x)
        x = self.b4(x)
        x = x.view(x.size(0), -1)
        return self.out(x).squeeze(1)


def r1_regularizer(x, logits):
    grad = torch.autograd.grad(outputs=logits.sum(), inputs=x, create_graph=True)[0]
    return grad.pow(2).view(grad.size(0), -1).sum(1).mean()


def path_length_reg(img, w):
    """Simplified PL: gradient of (img * noise).sum() w.r.t. w"""
    noise = torch.randn_like(img) / math.sqrt(img.numel() / img.size(0))
    grad = torch.autograd.grad(outputs=(img * noise).sum(), inputs=w, create_graph=True)[0]
    pl = grad.pow(2).sum(1).sqrt().mean()
    return pl


# ---- stylegan2-ada-pytorch's networks, cfg paper256 (training/networks.py) --------------------
SQRT2 = math.sqrt(2.0)


def bias_act(x, b, act="linear", gain=1.0, clamp=None):
    """ada's bias_act, the reference way: x + b, lrelu(0.2) * sqrt(2) or linear, times gain, clamp."""
    if b is not None:
        x = x + (b.view(1, -1, 1, 1) if x.ndim == 4 else b.view(1, -1))
    if act == "lrelu":
        x = F.leaky_relu(x, 0.2) * (SQRT2 * gain)
    elif gain != 1.0:
        x = x * gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return x


class AdaFC(nn.Module):  # FullyConnectedLayer: equalized lr, lr_mul
    def __init__(self, cin, cout, act="linear", lr_mul=1.0, bias_init=0.0):
        super().__init__()
        self.act, self.lr_mul, self.wg = act, lr_mul, lr_mul / math.sqrt(cin)
        self.weight = nn.Parameter(torch.randn(cout, cin) / lr_mul)
        self.bias = nn.Parameter(torch.full([cout], float(bias_init)))

    def forward(self, x):
        w, b = self.weight * self.wg, self.bias * self.lr_mul
        if self.act == "linear":
            return torch.addmm(b.unsqueeze(0), x, w.t())
        return bias_act(x.matmul(w.t()), b, self.act)


class AdaMapping(nn.Module):
    def __init__(self, z_dim, w_dim, num_ws, layers=8, lr_mul=0.01):
        super().__init__()
        self.num_ws = num_ws
        self.fcs = nn.ModuleList([AdaFC(z_dim if i == 0 else w_dim, w_dim, "lrelu", lr_mul) for i in range(layers)])
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z, update_w_avg=False):
        x = z * (z.square().mean(dim=1, keepdim=True) + 1e-8).rsqrt()
        for fc in self.fcs:
            x = fc(x)
        if update_w_avg:
            self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, 0.995))
        return x.unsqueeze(1).repeat(1, self.num_ws, 1)


class AdaSynthesisLayer(nn.Module):  # modulated 3x3 conv, random noise, bias + lrelu, clamp 256
    def __init__(self, cin, cout, w_dim, res, up, fused, clamp):
        super().__init__()
        self.res, self.up, self.fused, self.clamp = res, up, fused, clamp
        self.affine = AdaFC(w_dim, cin, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(cout, cin, 3, 3))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.noise_strength = nn.Parameter(torch.zeros([]))

    def forward(self, x, w):
        x = tck.modulated_conv2d(x, self.weight, self.affine(w), self.fused, self.up, FIR[0])
        x = x + torch.randn(x.shape[0], 1, self.res, self.res, device=x.device) * self.noise_strength
        return bias_act(x, self.bias, "lrelu", clamp=self.clamp)


class AdaToRGB(nn.Module):  # modulated 1x1 conv without demodulation
    def __init__(self, cin, cout, w_dim, fused, clamp):
        super().__init__()
        self.fused, self.clamp, self.wg = fused, clamp, 1 / math.sqrt(cin)
        self.affine = AdaFC(w_dim, cin, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(cout, cin, 1, 1))
        self.bias = nn.Parameter(torch.zeros(cout))

    def forward(self, x, w):
        x = tck.modulated_conv2d(x, self.weight, self.affine(w) * self.wg, self.fused, 1, FIR[0], demodulate=False)
        return bias_act(x, self.bias, clamp=self.clamp)


class AdaSynthesisBlock(nn.Module):  # skip architecture
    def __init__(self, cin, cout, w_dim, res, img_ch, fused, clamp):
        super().__init__()
        self.res = res
        if res == 4:
            self.const = nn.Parameter(torch.randn(cout, 4, 4))
        else:
            self.conv0 = AdaSynthesisLayer(cin, cout, w_dim, res, 2, fused, clamp)
        self.conv1 = AdaSynthesisLayer(cout, cout, w_dim, res, 1, fused, clamp)
        self.torgb = AdaToRGB(cout, img_ch, w_dim, fused, clamp)
        self.num_conv = 1 if res == 4 else 2

    def forward(self, x, img, ws):  # ws: num_conv + 1 of them
        with block_precision(self.res):
            return self._forward(x, img, ws)

    def _forward(self, x, img, ws):
        if self.res == 4:
            x = self.const.unsqueeze(0).repeat(ws.shape[0], 1, 1, 1)
        else:
            x = self.conv0(x, ws[:, 0])
        x = self.conv1(x, ws[:, self.num_conv - 1])
        y = self.torgb(x, ws[:, self.num_conv])
        return x, (y if img is None else tck.upsample2d(img, FIR[0]) + y)


def ada_channels(res):
    return min(16384 // res, 512)


class AdaGenerator(nn.Module):
    def __init__(self, z_dim, w_dim, res, img_ch, fused, clamp=256.0):
        super().__init__()
        log2 = int(math.log2(res))
        self.blocks = nn.ModuleList([AdaSynthesisBlock(ada_channels(2**i // 2) if i > 2 else 0, ada_channels(2**i), w_dim,
                                                       2**i, img_ch, fused, clamp) for i in range(2, log2 + 1)])
        self.mapping = AdaMapping(z_dim, w_dim, sum(b.num_conv for b in self.blocks) + 1)

    def synthesis(self, ws):
        x = img = None
        i = 0
        for b in self.blocks:
            x, img = b(x, img, ws[:, i:i + b.num_conv + 1])
            i += b.num_conv
        return img

    def forward(self, z, return_w=False, update_w_avg=False):
        ws = self.mapping(z, update_w_avg)
        img = self.synthesis(ws)
        return (img, ws) if return_w else img


class AdaConv(nn.Module):  # Conv2dLayer: equalized lr, optional FIR down 2, bias_act with clamp
    def __init__(self, cin, cout, k, act="lrelu", down=1, bias=True, clamp=None):
        super().__init__()
        self.act, self.down, self.clamp, self.wg = act, down, clamp, 1 / math.sqrt(cin * k * k)
        self.weight = nn.Parameter(torch.randn(cout, cin, k, k))
        self.bias = nn.Parameter(torch.zeros(cout)) if bias else None

    def forward(self, x, gain=1.0):
        w, k = self.weight * self.wg, self.weight.shape[-1]
        if self.down == 1:
            x = F.conv2d(x, w, padding=k // 2)
        elif k == 1:
            x = F.conv2d(tck.downsample2d(x, FIR[0]), w)
        else:  # conv2d_resample: FIR with padding 2, then the conv with stride 2
            x = F.conv2d(tck.upfirdn2d_ref(x, FIR[0], 1, 1, (2, 2, 2, 2), 1.0), w, stride=2)
        return bias_act(x, self.bias, self.act, gain, None if self.clamp is None else self.clamp * gain)


class AdaDiscriminatorBlock(nn.Module):  # resnet architecture
    def __init__(self, cin, ctmp, cout, img_ch, clamp):
        super().__init__()
        self.fromrgb = AdaConv(img_ch, ctmp, 1, clamp=clamp) if cin == 0 else None
        self.conv0 = AdaConv(ctmp, ctmp, 3, clamp=clamp)
        self.conv1 = AdaConv(ctmp, cout, 3, down=2, clamp=clamp)
        self.skip = AdaConv(ctmp, cout, 1, act="linear", down=2, bias=False)
        self.res = 0  # its input resolution, set by AdaDiscriminator

    def forward(self, x, img):
        with block_precision(self.res):
            return self._forward(x, img)

    def _forward(self, x, img):
        if self.fromrgb is not None:
            x = self.fromrgb(img)
        y = self.skip(x, gain=math.sqrt(0.5))
        x = self.conv1(self.conv0(x), gain=math.sqrt(0.5))
        return y + x


class AdaDiscriminator(nn.Module):
    def __init__(self, res, img_ch, mbstd_group=8, clamp=256.0):
        super().__init__()
        log2 = int(math.log2(res))
        self.blocks = nn.ModuleList([AdaDiscriminatorBlock(ada_channels(2**i) if i < log2 else 0, ada_channels(2**i),
                                                           ada_channels(2**i // 2), img_ch, clamp)
                                     for i in range(log2, 2, -1)])
        for i, b in zip(range(log2, 2, -1), self.blocks):
            b.res = 2**i
        c4 = ada_channels(4)
        self.mbstd_group = mbstd_group
        self.conv = AdaConv(c4 + 1, c4, 3, clamp=clamp)
        self.fc = AdaFC(c4 * 16, c4, "lrelu")
        self.out = AdaFC(c4, 1)

    def forward(self, img):
        x = None
        for b in self.blocks:
            x = b(x, img)
        N, C, H, W = x.shape  # minibatch stddev, 1 channel
        G = min(self.mbstd_group, N)
        y = x.reshape(G, -1, 1, C, H, W)
        y = (y - y.mean(dim=0)).square().mean(dim=0).add(1e-8).sqrt().mean(dim=[2, 3, 4])
        x = torch.cat([x, y.reshape(-1, 1, 1, 1).repeat(G, 1, H, W)], dim=1)
        x = self.fc(self.conv(x).flatten(1))
        return self.out(x).squeeze(1)


FIR = [None]  # the [1,3,3,1] filter on the device, set in main()
BF16_RES = [0]  # --precision bf16-mixed: blocks at this resolution and above under autocast bf16


def block_precision(res):
    if BF16_RES[0] and res >= BF16_RES[0]:
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


# ---- benchmark -------------------------------------------------------------------------------
class Laps:
    def __init__(self):
        self.last = time.perf_counter()
        self.laps = []

    def lap(self, name):
        if DEV.type == "cuda":
            torch.cuda.synchronize()
        now = time.perf_counter()
        self.laps.append((name, (now - self.last) * 1e3))
        self.last = now


def apply(opt, params, grads):
    for p, g in zip(params, grads):
        if g is not None:  # as training_loop.py: misc.nan_to_num(param.grad, nan=0, posinf=1e5, neginf=-1e5, out=...)
            torch.nan_to_num(g, nan=0.0, posinf=1e5, neginf=-1e5, out=g)
        p.grad = g
    opt.step()
    opt.zero_grad(set_to_none=True)


def info():
    print(f"# torch {torch.__version__} from {os.path.dirname(torch.__file__)}, python {sys.executable}")
    print(f"# torch.get_num_threads()={torch.get_num_threads()} OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')} "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')} mkldnn.is_available={torch.backends.mkldnn.is_available()}")
    for line in torch.__config__.show().splitlines():
        if "BLAS" in line or "LAPACK" in line or "MKL" in line:
            print("# config: " + line.strip()[:300])
    libs = []
    with open("/proc/self/maps") as maps:
        for line in maps:
            p = line.split()[-1]
            if any(k in p for k in ("blas", "lapack", "dnnl", "mkl", "gomp")) and p not in libs:
                libs.append(p)
    for p in libs:
        print(f"# loaded: {p} -> {os.path.realpath(p)}")
    try:
        q = subprocess.run(["update-alternatives", "--query", "libblas.so.3-x86_64-linux-gnu"],
                           capture_output=True, text=True).stdout
        val = [l for l in q.splitlines() if l.startswith("Value:")]
        print("# update-alternatives libblas.so.3: " + (val[0] if val else "(no value)"))
    except OSError as e:
        print(f"# update-alternatives: {e}")


def parse_args():
    ap = argparse.ArgumentParser(description="PyTorch twin of bench/bench_train_phases.cpp (see the file's docstring)")
    ap.add_argument("--quick", action="store_true", help="3 timed runs per phase instead of 5")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--cfg", choices=["seed32", "paper256"], default="seed32")
    ap.add_argument("--batch", type=int, default=cfg.batch)
    ap.add_argument("--modconv", choices=["act", "grouped"], default="act",
                    help="modulate-activations conv(x * s, weight) * dcoefs (default) or one grouped conv")
    ap.add_argument("--precision", choices=["f32", "tf32", "bf16", "bf16-mixed"], default="f32",
                    help="CUDA: f32 (default; no TF32), tf32 (TF32 allowed in cuBLAS and cuDNN), bf16 "
                         "(each phase under torch.autocast(dtype=torch.bfloat16), TF32 allowed), or "
                         "bf16-mixed (paper256: the blocks at resolution >= 32 under autocast bf16, f32 elsewhere)")
    return ap.parse_args()


def main():
    global DEV
    args = parse_args()
    DEV = torch.device(args.device)
    cuda = DEV.type == "cuda"
    if cuda and not torch.cuda.is_available():
        print(f"torch_train_phases.py: --device cuda, but torch {torch.__version__} sees no CUDA device", file=sys.stderr)
        return 1
    if args.precision != "f32" and not cuda:
        print("torch_train_phases.py: --precision tf32 / bf16 is for --device cuda", file=sys.stderr)
        return 2
    if args.precision == "bf16-mixed" and args.cfg != "paper256":
        print("torch_train_phases.py: --precision bf16-mixed is for --cfg paper256", file=sys.stderr)
        return 2
    if cuda:  # f32 as stylegrad: no TF32 in cuBLAS or cuDNN (unless --precision asks for it)
        torch.backends.cuda.matmul.allow_tf32 = args.precision in ("tf32", "bf16")
        torch.backends.cudnn.allow_tf32 = args.precision in ("tf32", "bf16")
        torch.backends.cudnn.benchmark = True
    else:
        torch.set_num_threads(2)
    warmup, reps = (2 if cuda else 1), (3 if args.quick else 5)
    fused = args.modconv == "grouped"
    N = cfg.batch = args.batch
    torch.manual_seed(0)
    if args.cfg == "seed32":
        G = Generator(cfg.z_dim, cfg.w_dim, cfg.fmap, fused=fused)
        D = Discriminator(cfg.fmap)
        z_dim, res, gamma = cfg.z_dim, cfg.img, cfg.r1_gamma
        what = f"notebook model fmap {cfg.fmap} z {cfg.z_dim} w {cfg.w_dim}"
    else:
        z_dim, res, gamma = 512, 256, 1.0
        BF16_RES[0] = max(res // 8, 8) if args.precision == "bf16-mixed" else 0
        G = AdaGenerator(z_dim, 512, res, 3, fused)
        D = AdaDiscriminator(res, 3)
        what = "stylegan2-ada networks cfg paper256 (reference upfirdn2d / bias_act) z 512 w 512"
    G, D = G.to(DEV), D.to(DEV)
    FIR[0] = tck.fir(DEV)
    G_params, D_params = list(G.parameters()), list(D.parameters())
    opt_G = torch.optim.Adam(G_params, lr=cfg.lr, betas=cfg.betas)
    opt_D = torch.optim.Adam(D_params, lr=cfg.lr, betas=cfg.betas)
    info()
    where = f"device cuda \"{torch.cuda.get_device_name(DEV)}\"" if cuda else "device cpu"
    modconv = "grouped (one grouped conv)" if fused else "act (conv(x * s, weight) * dcoefs)"
    print(f"# torch train phases: {what}, batch {N}, {args.precision}, modconv {modconv}, "
          f"G {sum(p.numel() for p in G_params)} params, D {sum(p.numel() for p in D_params)} params, "
          f"warmup={warmup} reps={reps} (median){'' if not cuda else ', ' + where}", flush=True)
    real = (torch.rand(N, 3, res, res) * 2 - 1).to(DEV)
    state = {"pl_ema": None}

    def gen(z, return_w=False, update=False):
        return G(z, return_w=return_w) if args.cfg == "seed32" else G(z, return_w=return_w, update_w_avg=update)

    def randn(*shape):
        return torch.randn(*shape, device=DEV)

    def g_forward(L):
        with torch.no_grad():
            gen(randn(N, z_dim))
        L.lap("G")

    def d_step(L):
        z = randn(N, z_dim)
        with torch.no_grad():
            fake = gen(z, update=True)
        L.lap("G_nograd")
        real_logits = D(real)
        fake_logits = D(fake)
        d_loss = F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
        L.lap("D_fwd_x2")
        grads = torch.autograd.grad(d_loss, D_params)
        L.lap("backward")
        apply(opt_D, D_params, grads)
        L.lap("adam")

    def g_step(L):
        z = randn(N, z_dim)
        img = gen(z, update=True)
        L.lap("G_fwd")
        g_loss = F.softplus(-D(img)).mean()
        L.lap("D_fwd")
        grads = torch.autograd.grad(g_loss, G_params)
        L.lap("backward")
        apply(opt_G, G_params, grads)
        L.lap("adam")

    def r1_step(L):
        x = real.detach().requires_grad_(True)
        logits = D(x)
        L.lap("D_fwd")
        grad = torch.autograd.grad(outputs=logits.sum(), inputs=x, create_graph=True)[0]
        L.lap("grad_x_create_graph")
        r1 = grad.pow(2).view(grad.size(0), -1).sum(1).mean()  # = r1_regularizer(x, logits)
        loss = (gamma * 0.5) * r1
        grads = torch.autograd.grad(loss, D_params, allow_unused=True)  # out.bias: no R1 gradient
        L.lap("double_backward")
        apply(opt_D, D_params, grads)
        L.lap("adam")

    def pl_step(L):
        mb = N // 2
        img, w = gen(randn(mb, z_dim), return_w=True, update=True)
        L.lap("G_fwd")
        if args.cfg == "seed32":
            noise = torch.randn_like(img) / math.sqrt(img.numel() / img.size(0))
        else:
            noise = torch.randn_like(img) / math.sqrt(img.shape[2] * img.shape[3])
        grad = torch.autograd.grad(outputs=(img * noise).sum(), inputs=w, create_graph=True)[0]
        L.lap("grad_ws_create_graph")
        if args.cfg == "seed32":
            pl = grad.pow(2).sum(1).sqrt().mean()  # = path_length_reg(img, w)
        else:
            pl = grad.square().sum(2).mean(1).sqrt()  # ada: per-sample lengths over ws [N, num_ws, w_dim]
        if state["pl_ema"] is None:
            state["pl_ema"] = pl.detach().mean()
        pl_pen = (pl - state["pl_ema"]).pow(2).mean()
        state["pl_ema"] = state["pl_ema"].lerp(pl.detach().mean(), 0.01)
        loss = (cfg.pl_weight if args.cfg == "seed32" else 2.0) * pl_pen
        grads = torch.autograd.grad(loss, G_params, allow_unused=True)
        L.lap("double_backward")
        apply(opt_G, G_params, grads)
        L.lap("adam")

    if args.cfg == "seed32":  # sanity: the inlined R1 / PL equal the notebook's functions
        x = real.detach().requires_grad_(True)
        a = r1_regularizer(x, D(x)).item()
        g = torch.autograd.grad(D(x).sum(), x)[0]
        assert abs(a - g.pow(2).view(N, -1).sum(1).mean().item()) <= 1e-4 * max(1.0, abs(a))
        img, w = G(randn(4, cfg.z_dim), return_w=True)
        assert torch.isfinite(path_length_reg(img, w))

    def precision_ctx():
        if args.precision == "bf16":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    for name, fn0 in [("G_forward", g_forward), ("D_step", d_step), ("G_step", g_step),
                      ("R1_step", r1_step), ("PL_step", pl_step)]:
        def fn(L, fn0=fn0):
            with precision_ctx():
                fn0(L)

        for _ in range(warmup):
            fn(Laps())
        total, laps, order = [], {}, []
        for _ in range(reps):
            L = Laps()
            a = time.perf_counter()
            L.last = a
            fn(L)
            total.append((time.perf_counter() - a) * 1e3)
            for k, v in L.laps:
                if k not in laps:
                    order.append(k)
                    laps[k] = []
                laps[k].append(v)
        print(f"phase={name} impl=torch ms={statistics.median(total):.2f}")
        print(f"# breakdown phase={name} impl=torch " + " ".join(f"{k}={statistics.median(laps[k]):.2f}" for k in order),
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
