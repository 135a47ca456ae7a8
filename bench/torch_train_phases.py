#!/usr/bin/python3
"""PyTorch CPU twin of bench/bench_train_phases.cpp: the seed-002 notebook's model, f32,
batch 32, the same five training phases, same protocol, same output format.

Run with Debian's python3 (python3-torch), not a pyenv/venv python:
    OMP_NUM_THREADS=2 /usr/bin/python3 bench/torch_train_phases.py [--quick]

Model: the notebook's Mapping (pixel norm + 4 x Linear/LeakyReLU), ModulatedConv2d (styles =
Linear(w) + 1, nearest upsampling, demodulation, one grouped conv), SynthesisBlock, Generator
(4 -> 32, skip toRGB, tanh), ResBlockD and Discriminator, with the notebook's final cfg:
fmap 96, w_dim 192, z_dim 128, 3 image channels. Adam(lr 2e-4, betas (0, 0.99)).

Phases (as the stylegrad twin; gradients are taken with torch.autograd.grad wrt the stepped
network's parameters only, set as .grad, then opt.step(), like the engine's training loop):
  G_forward  G(z) under torch.no_grad()
  D_step     fake = G(z) under no_grad; softplus(-D(real)).mean() + softplus(D(fake)).mean();
             grads wrt D params; Adam step
  G_step     softplus(-D(G(z))).mean(); grads wrt G params; Adam step
  R1_step    the notebook's r1_regularizer(real, D(real)) (grad wrt reals, create_graph),
             loss = r1_gamma/2 * r1; grads wrt D params; Adam step
  PL_step    G on batch // 2 (= the notebook's min(16, batch)), return_w; the notebook's
             path_length_reg(img, w) (grad of sum(img * noise) wrt the mapping output w,
             create_graph); pl_pen = (pl - pl_ema)^2; grads wrt G params; Adam step
Protocol: `warmup` untimed runs, then the median of `reps` timed runs (time.perf_counter);
`# breakdown` lines give the median of each sub-step lap.
Output: one line per phase,  phase=<name> impl=torch ms=<median ms>
Lines starting with '#' are information (threads, BLAS).
"""
import math
import os
import statistics
import subprocess
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

QUICK = "--quick" in sys.argv[1:]
WARMUP, REPS = (1, 3) if QUICK else (1, 5)
torch.set_num_threads(2)


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
    def __init__(self, in_ch, out_ch, w_dim, k=3, up=False, demod=True):
        super().__init__()
        self.in_ch, self.out_ch, self.k, self.up, self.demod = in_ch, out_ch, k, up, demod
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, k, k) * 0.02)
        self.style = nn.Linear(w_dim, in_ch)
        self.bias = nn.Parameter(torch.zeros(out_ch))
        self.pad = k // 2

    def forward(self, x, w):
        B, C, H, W = x.shape
        if self.up:
            x = F.interpolate(x, scale_factor=2, mode='nearest')
            H, W = x.shape[-2:]
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
    def __init__(self, in_ch, out_ch, w_dim, up):
        super().__init__()
        self.conv1 = ModulatedConv2d(in_ch, out_ch, w_dim, k=3, up=up, demod=True)
        self.conv2 = ModulatedConv2d(out_ch, out_ch, w_dim, k=3, up=False, demod=True)
        self.toRGB = ModulatedConv2d(out_ch, 3, w_dim, k=1, up=False, demod=False)

    def forward(self, x, w1, w2, rgb=None):
        x = lrelu(self.conv1(x, w1))
        x = lrelu(self.conv2(x, w2))
        rgb_new = self.toRGB(x, w2)
        rgb = rgb_new if rgb is None else F.interpolate(rgb, scale_factor=2, mode='nearest') + rgb_new
        return x, rgb


class Generator(nn.Module):
    def __init__(self, z_dim, w_dim, fmap):
        super().__init__()
        self.mapping = Mapping(z_dim, w_dim)
        self.const = nn.Parameter(torch.randn(1, fmap * 4, 4, 4))
        self.b4 = SynthesisBlock(fmap * 4, fmap * 4, w_dim, up=False)
        self.b8 = SynthesisBlock(fmap * 4, fmap * 2, w_dim, up=True)
        self.b16 = SynthesisBlock(fmap * 2, fmap, w_dim, up=True)
        self.b32 = SynthesisBlock(fmap, fmap // 2, w_dim, up=True)

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


# ---- benchmark -------------------------------------------------------------------------------
class Laps:
    def __init__(self):
        self.last = time.perf_counter()
        self.laps = []

    def lap(self, name):
        now = time.perf_counter()
        self.laps.append((name, (now - self.last) * 1e3))
        self.last = now


def apply(opt, params, grads):
    for p, g in zip(params, grads):
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


def main():
    torch.manual_seed(0)
    G = Generator(cfg.z_dim, cfg.w_dim, cfg.fmap)
    D = Discriminator(cfg.fmap)
    G_params, D_params = list(G.parameters()), list(D.parameters())
    opt_G = torch.optim.Adam(G_params, lr=cfg.lr, betas=cfg.betas)
    opt_D = torch.optim.Adam(D_params, lr=cfg.lr, betas=cfg.betas)
    info()
    print(f"# torch train phases: notebook model fmap {cfg.fmap} z {cfg.z_dim} w {cfg.w_dim}, batch {cfg.batch}, f32, "
          f"G {sum(p.numel() for p in G_params)} params, D {sum(p.numel() for p in D_params)} params, "
          f"warmup={WARMUP} reps={REPS} (median)", flush=True)
    N = cfg.batch
    real = torch.rand(N, 3, cfg.img, cfg.img) * 2 - 1
    state = {"pl_ema": None}

    def g_forward(L):
        with torch.no_grad():
            G(torch.randn(N, cfg.z_dim))
        L.lap("G")

    def d_step(L):
        z = torch.randn(N, cfg.z_dim)
        with torch.no_grad():
            fake = G(z)
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
        z = torch.randn(N, cfg.z_dim)
        img = G(z)
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
        loss = (cfg.r1_gamma * 0.5) * r1
        grads = torch.autograd.grad(loss, D_params, allow_unused=True)  # out.bias: no R1 gradient
        L.lap("double_backward")
        apply(opt_D, D_params, grads)
        L.lap("adam")

    def pl_step(L):
        mb = N // 2
        img, w = G(torch.randn(mb, cfg.z_dim), return_w=True)
        L.lap("G_fwd")
        noise = torch.randn_like(img) / math.sqrt(img.numel() / img.size(0))
        grad = torch.autograd.grad(outputs=(img * noise).sum(), inputs=w, create_graph=True)[0]
        L.lap("grad_ws_create_graph")
        pl = grad.pow(2).sum(1).sqrt().mean()  # = path_length_reg(img, w)
        if state["pl_ema"] is None:
            state["pl_ema"] = pl.detach()
        pl_pen = (pl - state["pl_ema"]).pow(2)
        state["pl_ema"] = state["pl_ema"].lerp(pl.detach(), 0.01)
        loss = cfg.pl_weight * pl_pen
        grads = torch.autograd.grad(loss, G_params, allow_unused=True)
        L.lap("double_backward")
        apply(opt_G, G_params, grads)
        L.lap("adam")

    # sanity: the inlined R1 / PL equal the notebook's functions
    x = real.detach().requires_grad_(True)
    a = r1_regularizer(x, D(x)).item()
    g = torch.autograd.grad(D(x).sum(), x)[0]
    assert abs(a - g.pow(2).view(N, -1).sum(1).mean().item()) <= 1e-4 * max(1.0, abs(a))
    img, w = G(torch.randn(4, cfg.z_dim), return_w=True)
    assert torch.isfinite(path_length_reg(img, w))

    for name, fn in [("G_forward", g_forward), ("D_step", d_step), ("G_step", g_step),
                     ("R1_step", r1_step), ("PL_step", pl_step)]:
        for _ in range(WARMUP):
            fn(Laps())
        total, laps, order = [], {}, []
        for _ in range(REPS):
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


if __name__ == "__main__":
    main()
