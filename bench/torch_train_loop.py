#!/usr/bin/python3
"""The README's main job in PyTorch: the `small` config (models/config.cpp) trained by a loop
written the way stylegan2-ada-pytorch writes it (training/training_loop.py, training/loss.py,
training/networks.py), on the CPU, f32. The PyTorch side of bench/run_main_job_bench.sh, which
runs it beside `stylegan2-train` and prints the ratio (issue 9: goal 3x or more).

Run it with Debian's python3 (python3-torch), not a pyenv/venv python:
    OMP_NUM_THREADS=2 /usr/bin/python3 bench/torch_train_loop.py [--kimg 0.5] [--warmup-kimg 0.25]
Options: --kimg K timed length (default 0.5); --warmup-kimg W untimed minibatches first
(default 0.25); --batch N (default 16); --data PATH|random (default Debian's Fashion-MNIST,
/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz, as stylegan2-train; `random`:
uniform uint8 images of the same shape); --modconv ada|act (default ada); --seed S (default 0).
Threads: torch.set_num_threads(OMP_NUM_THREADS, default 2). The OpenMP wait policy is
whatever the environment says (a PyTorch user's default: OMP_WAIT_POLICY unset, libgomp
spins a while before sleeping); the script prints it.

Timing, as stylegan2-train's last tick: minibatches are counted the way stylegan2-train
counts ticks, so `--warmup-kimg W --kimg K` trains ceil(1000 W / batch) untimed minibatches,
then ceil(1000 (W + K) / batch) - that many timed ones; with W = K = kimg/2 (what the
runner passes) the timed minibatches are the same indices, hence the same mix of lazy
R1 / path-length steps, as stylegan2-train's last tick of `--kimg kimg --tick kimg/2`.
Output: `result impl=torch s_per_kimg=<s> ...` (timed seconds / timed images x 1000), the
parameter counts of G and D (stylegrad's `small` with one channel: G 313,867, D 337,153;
compared, and both printed if they differ), per-phase time shares, threads, torch version.

The model (the Ada* classes of bench/torch_train_phases.py, built on
bench/torch_cuda_kernels.py's reference upfirdn2d, which is what ada runs on a CPU; its
custom ops are CUDA-only, and its conv2d_gradfix falls back to F.conv2d off CUDA):
  G   mapping: normalize_2nd_moment(z), 2 FC 64->64 with lrelu, lr_mul 0.01, w_avg (0.995);
      synthesis (skip): const 4x4, blocks 4..32 of 64 channels (min(2048 / res, 64)),
      modulated 3x3 convs (up 2: transposed conv + [1,3,3,1] FIR), random noise, bias_act
      lrelu; ToRGB 1x1 without demodulation, upsample2d of the running image; 1 channel;
      num_ws 8. No conv_clamp and no fp16 layers: ada's train.py sets conv_clamp 256 together
      with num_fp16_res 4 (mixed precision), stylegrad's `small` has neither (f32).
  D   resnet: fromrgb 1x1, blocks 32..8 (conv0 3x3, conv1 3x3 down 2 via FIR + stride 2,
      skip 1x1 down 2 without bias, gain sqrt(1/2)); epilogue mbstd (group 4, 1 channel),
      conv 3x3, fc, out. No conditioning (c_dim 0): ada's zero-size label tensors are left out.
  --modconv ada (default): ada's modulated_conv2d with fused_modconv=False (what it trains
      with): per-sample weights w = weight * styles only to get dcoefs =
      rsqrt(sum(w^2) + 1e-8), x * styles, conv2d_resample, then fma(x, dcoefs, noise), ada's
      custom autograd Function (addcmul forward, Python backward).
  --modconv act: the cheaper way of bench/torch_train_phases.py (dcoefs = rsqrt(styles^2 @
      sum_k(weight^2)^T + 1e-8), noise added after): same numbers, less work; a variant
      that favours PyTorch, not ada's code.
The loop (ada's training_loop with the `small` hyperparameters): phases Gmain (every
minibatch), Greg (every 4: path length on batch / 2 of that phase's latents, noise
randn / sqrt(H W), pl_decay 0.01, weight 2), Dmain (every minibatch: fakes from G with G's
parameters not requiring grad, then reals; two backward passes), Dreg (every 16: R1,
gamma = 0.0002 * 32^2 / 16 = 0.0128); each phase: zero_grad(set_to_none), module
.requires_grad_(True), loss.backward() with gain = the phase's interval,
requires_grad_(False), misc.nan_to_num of the grads, Adam step. Adam lr 0.0025, betas
(0, 0.99), eps 1e-8, with lazy regularization's mb_ratio = interval / (interval + 1) on lr and
betas (G: 4, D: 16). run_G: mapping, style mixing with probability 0.9 (cutoff in
[1, num_ws); the second mapping always runs, as in ada), synthesis. G_ema after every
minibatch: ema_kimg = batch * 10 / 32, ramp-up 0.05, params lerped, buffers copied. Each
minibatch draws 4 x batch latents (one set per phase) as ada. training_stats.report's
moments are computed as ada does (a few tiny ops per report).
Data: the whole set as uint8 in memory (28x28 padded to 32x32 with black, as stylegan2-train),
a shuffled index per epoch, then ada's `.to(float32) / 127.5 - 1`; ada's DataLoader worker
processes are left out (data loading is not what is measured; stylegrad loads on one
background thread). Not timed: ada's ticks, snapshots and metrics (stylegan2-train runs with
--metrics 0 --snap 0, and its tick lines exclude its snapshot at the end).
"""
import argparse
import copy
import gzip
import math
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

import torch_cuda_kernels as tck  # reference upfirdn2d, conv_resample (bench/)
import torch_train_phases as tpp  # the Ada* networks (bench/)


class Small:  # models/config.cpp, `small`, one image channel (Fashion-MNIST), 32x32
    res = 32
    img_ch = 1
    z_dim = w_dim = 64
    mapping_layers = 2
    mapping_lr_mul = 0.01
    channel_base, channel_max = 2048, 64
    mbstd_group = 4
    batch = 16
    lr = 0.0025
    betas = (0.0, 0.99)
    r1_interval, pl_interval = 16, 4
    pl_weight, pl_decay, pl_batch_shrink = 2.0, 0.01, 2
    style_mixing_prob = 0.9
    ema_rampup = 0.05
    # stylegrad's own counts for this config (docs/training.md; stylegan2-train's start-up line)
    stylegrad_G_params, stylegrad_D_params = 313867, 337153

    @staticmethod
    def gamma(batch):
        return 0.0002 * Small.res**2 / batch

    @staticmethod
    def ema_kimg(batch):
        return batch * 10 / 32


def channels(res):
    return min(Small.channel_base // res, Small.channel_max)


# ---- ada's modulated_conv2d with fused_modconv=False, and its fma --------------------------------
def _unbroadcast(x, shape):  # torch_utils/ops/fma.py
    extra_dims = x.ndim - len(shape)
    assert extra_dims >= 0
    dim = [i for i in range(x.ndim) if x.shape[i] > 1 and (i < extra_dims or shape[i - extra_dims] == 1)]
    if len(dim):
        x = x.sum(dim=dim, keepdim=True)
    if extra_dims:
        x = x.reshape(-1, *x.shape[extra_dims + 1:])
    assert x.shape == shape
    return x


class _FusedMultiplyAdd(torch.autograd.Function):  # a * b + c
    @staticmethod
    def forward(ctx, a, b, c):
        out = torch.addcmul(c, a, b)
        ctx.save_for_backward(a, b)
        ctx.c_shape = c.shape
        return out

    @staticmethod
    def backward(ctx, dout):
        a, b = ctx.saved_tensors
        da = db = dc = None
        if ctx.needs_input_grad[0]:
            da = _unbroadcast(dout * b, a.shape)
        if ctx.needs_input_grad[1]:
            db = _unbroadcast(dout * a, b.shape)
        if ctx.needs_input_grad[2]:
            dc = _unbroadcast(dout, ctx.c_shape)
        return da, db, dc


def fma(a, b, c):
    return _FusedMultiplyAdd.apply(a, b, c)


def ada_modulated_conv2d(x, weight, styles, noise, up, f):
    """training/networks.py::modulated_conv2d, demodulate=True, fused_modconv=False, f32."""
    N = x.shape[0]
    w = weight.unsqueeze(0) * styles.reshape(N, 1, -1, 1, 1)  # [NOIkk], only for dcoefs
    dcoefs = (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()  # [NO]
    x = x * styles.reshape(N, -1, 1, 1)
    x = tck.conv_resample(x, weight, f, up, 1)
    return fma(x, dcoefs.reshape(N, -1, 1, 1), noise)


class SmallSynthesisLayer(tpp.AdaSynthesisLayer):
    """AdaSynthesisLayer; with --modconv ada its forward is ada's SynthesisLayer.forward."""
    ada = True

    def forward(self, x, w):
        if not self.ada:
            return super().forward(x, w)
        styles = self.affine(w)
        noise = torch.randn([x.shape[0], 1, self.res, self.res], device=x.device) * self.noise_strength
        x = ada_modulated_conv2d(x, self.weight, styles, noise, self.up, tpp.FIR[0])
        return tpp.bias_act(x, self.bias, "lrelu", clamp=self.clamp)


class SmallSynthesisBlock(tpp.AdaSynthesisBlock):
    def __init__(self, cin, cout, w_dim, res, img_ch):
        super().__init__(cin, cout, w_dim, res, img_ch, False, None)  # fused_modconv False, no clamp
        if res != 4:
            self.conv0 = SmallSynthesisLayer(cin, cout, w_dim, res, 2, False, None)
        self.conv1 = SmallSynthesisLayer(cout, cout, w_dim, res, 1, False, None)


class SmallGenerator(tpp.AdaGenerator):  # ada's Generator, skip architecture; synthesis/forward reused
    def __init__(self):
        nn.Module.__init__(self)
        c = Small
        log2 = int(math.log2(c.res))
        self.blocks = nn.ModuleList([SmallSynthesisBlock(channels(2**i // 2) if i > 2 else 0, channels(2**i), c.w_dim,
                                                         2**i, c.img_ch) for i in range(2, log2 + 1)])
        num_ws = sum(b.num_conv for b in self.blocks) + 1
        self.mapping = tpp.AdaMapping(c.z_dim, c.w_dim, num_ws, layers=c.mapping_layers, lr_mul=c.mapping_lr_mul)


class SmallDiscriminator(tpp.AdaDiscriminator):  # ada's Discriminator, resnet; forward reused
    def __init__(self):
        nn.Module.__init__(self)
        c = Small
        log2 = int(math.log2(c.res))
        self.blocks = nn.ModuleList([tpp.AdaDiscriminatorBlock(channels(2**i) if i < log2 else 0, channels(2**i),
                                                               channels(2**i // 2), c.img_ch, None)
                                     for i in range(log2, 2, -1)])
        c4 = channels(4)
        self.mbstd_group = c.mbstd_group
        self.conv = tpp.AdaConv(c4 + 1, c4, 3)
        self.fc = tpp.AdaFC(c4 * 16, c4, "lrelu")
        self.out = tpp.AdaFC(c4, 1)


# ---- torch_utils/training_stats.report, torch_utils/misc.nan_to_num -----------------------------
_counters = {}


def report(name, value):
    elems = torch.as_tensor(value)
    if elems.numel() == 0:
        return value
    elems = elems.detach().flatten().to(torch.float32)
    moments = torch.stack([torch.ones_like(elems).sum(), elems.sum(), elems.square().sum()]).to(torch.float64)
    if name not in _counters:
        _counters[name] = torch.zeros_like(moments)
    _counters[name].add_(moments)
    return value


def nan_to_num(input, nan=0.0, posinf=None, neginf=None, *, out=None):
    assert nan == 0
    return torch.clamp(input.unsqueeze(0).nansum(0), min=neginf, max=posinf, out=out)


# ---- training/loss.py::StyleGAN2Loss ------------------------------------------------------------
class StyleGAN2Loss:
    def __init__(self, G_mapping, G_synthesis, D, r1_gamma):
        self.G_mapping, self.G_synthesis, self.D = G_mapping, G_synthesis, D
        self.style_mixing_prob = Small.style_mixing_prob
        self.r1_gamma = r1_gamma
        self.pl_batch_shrink, self.pl_decay, self.pl_weight = Small.pl_batch_shrink, Small.pl_decay, Small.pl_weight
        self.pl_mean = torch.zeros([])

    def run_G(self, z):
        ws = self.G_mapping(z, update_w_avg=True)
        if self.style_mixing_prob > 0:
            cutoff = torch.empty([], dtype=torch.int64, device=ws.device).random_(1, ws.shape[1])
            cutoff = torch.where(torch.rand([], device=ws.device) < self.style_mixing_prob, cutoff,
                                 torch.full_like(cutoff, ws.shape[1]))
            ws[:, cutoff:] = self.G_mapping(torch.randn_like(z), update_w_avg=False)[:, cutoff:]
        img = self.G_synthesis(ws)
        return img, ws

    def run_D(self, img):
        return self.D(img)  # no augment pipe

    def accumulate_gradients(self, phase, real_img, gen_z, gain):
        do_Gmain = phase in ["Gmain", "Gboth"]
        do_Dmain = phase in ["Dmain", "Dboth"]
        do_Gpl = phase in ["Greg", "Gboth"] and self.pl_weight != 0
        do_Dr1 = phase in ["Dreg", "Dboth"] and self.r1_gamma != 0

        if do_Gmain:  # Gmain: maximize logits for generated images
            gen_img, _gen_ws = self.run_G(gen_z)
            gen_logits = self.run_D(gen_img)
            report("Loss/scores/fake", gen_logits)
            report("Loss/signs/fake", gen_logits.sign())
            loss_Gmain = F.softplus(-gen_logits)
            report("Loss/G/loss", loss_Gmain)
            loss_Gmain.mean().mul(gain).backward()

        if do_Gpl:  # Gpl: path length regularization
            batch_size = gen_z.shape[0] // self.pl_batch_shrink
            gen_img, gen_ws = self.run_G(gen_z[:batch_size])
            pl_noise = torch.randn_like(gen_img) / math.sqrt(gen_img.shape[2] * gen_img.shape[3])
            pl_grads = torch.autograd.grad(outputs=[(gen_img * pl_noise).sum()], inputs=[gen_ws], create_graph=True,
                                           only_inputs=True)[0]  # (conv2d_gradfix.no_weight_gradients: CUDA only)
            pl_lengths = pl_grads.square().sum(2).mean(1).sqrt()
            pl_mean = self.pl_mean.lerp(pl_lengths.mean(), self.pl_decay)
            self.pl_mean.copy_(pl_mean.detach())
            pl_penalty = (pl_lengths - pl_mean).square()
            report("Loss/pl_penalty", pl_penalty)
            loss_Gpl = pl_penalty * self.pl_weight
            report("Loss/G/reg", loss_Gpl)
            (gen_img[:, 0, 0, 0] * 0 + loss_Gpl).mean().mul(gain).backward()

        loss_Dgen = 0
        if do_Dmain:  # Dmain: minimize logits for generated images
            gen_img, _gen_ws = self.run_G(gen_z)
            gen_logits = self.run_D(gen_img)
            report("Loss/scores/fake", gen_logits)
            report("Loss/signs/fake", gen_logits.sign())
            loss_Dgen = F.softplus(gen_logits)
            loss_Dgen.mean().mul(gain).backward()

        if do_Dmain or do_Dr1:  # Dmain: maximize logits for reals; Dr1: R1
            real_img_tmp = real_img.detach().requires_grad_(do_Dr1)
            real_logits = self.run_D(real_img_tmp)
            report("Loss/scores/real", real_logits)
            report("Loss/signs/real", real_logits.sign())
            loss_Dreal = 0
            if do_Dmain:
                loss_Dreal = F.softplus(-real_logits)
                report("Loss/D/loss", loss_Dgen + loss_Dreal)
            loss_Dr1 = 0
            if do_Dr1:
                r1_grads = torch.autograd.grad(outputs=[real_logits.sum()], inputs=[real_img_tmp], create_graph=True,
                                               only_inputs=True)[0]
                r1_penalty = r1_grads.square().sum([1, 2, 3])
                loss_Dr1 = r1_penalty * (self.r1_gamma / 2)
                report("Loss/r1_penalty", r1_penalty)
                report("Loss/D/reg", loss_Dr1)
            (real_logits * 0 + loss_Dreal + loss_Dr1).mean().mul(gain).backward()


# ---- data -----------------------------------------------------------------------------------------
FASHION = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"


def load_images(path, gen):
    """uint8 [N, 1, 32, 32]: an idx3 file (.gz) padded 28 -> 32 with black, or `random`."""
    if path == "random":
        return torch.randint(0, 256, (60000, 1, Small.res, Small.res), dtype=torch.uint8, generator=gen), \
            "random uint8 images, 60000 x 1 x 32 x 32"
    with (gzip.open if path.endswith(".gz") else open)(path, "rb") as f:
        raw = f.read()
    magic, n, rows, cols = (int.from_bytes(raw[i:i + 4], "big") for i in range(0, 16, 4))
    if magic != 2051:
        raise SystemExit(f"torch_train_loop.py: {path} is not an idx3 image file (magic {magic})")
    x = torch.frombuffer(bytearray(raw[16:16 + n * rows * cols]), dtype=torch.uint8).reshape(n, 1, rows, cols)
    py, px = (Small.res - rows) // 2, (Small.res - cols) // 2
    out = torch.zeros(n, 1, Small.res, Small.res, dtype=torch.uint8)
    out[:, :, py:py + rows, px:px + cols] = x
    return out, f"{path}, {n} images {rows}x{cols} padded to {Small.res}x{Small.res}"


class Batches:  # an endless shuffled stream, a new permutation per epoch
    def __init__(self, images, batch, gen):
        self.images, self.batch, self.gen = images, batch, gen
        self.perm, self.pos = torch.randperm(len(images), generator=gen), 0

    def next(self):
        if self.pos + self.batch > len(self.perm):
            self.perm, self.pos = torch.randperm(len(self.images), generator=self.gen), 0
        idx = self.perm[self.pos:self.pos + self.batch]
        self.pos += self.batch
        return self.images[idx]


# ---- training/training_loop.py ----------------------------------------------------------------------
class Phase:
    def __init__(self, name, module, opt, interval):
        self.name, self.module, self.opt, self.interval = name, module, opt, interval


def wait_policy():
    p = os.environ.get("OMP_WAIT_POLICY")
    s = os.environ.get("GOMP_SPINCOUNT")
    if p is None and s is None:
        return "unset (libgomp's default: spin, then sleep)"
    return ", ".join(x for x in ([f"OMP_WAIT_POLICY={p}"] if p is not None else []) +
                     ([f"GOMP_SPINCOUNT={s}"] if s is not None else []))


def parse_args():
    ap = argparse.ArgumentParser(description="stylegan2-ada-pytorch-style training loop of the small config "
                                             "(see the file's docstring)")
    ap.add_argument("--kimg", type=float, default=0.5, help="timed training length in kimg (default 0.5)")
    ap.add_argument("--warmup-kimg", type=float, default=0.25, help="untimed training first (default 0.25)")
    ap.add_argument("--batch", type=int, default=Small.batch)
    ap.add_argument("--data", default=FASHION, help="idx3 image file (.gz) or `random` (default Fashion-MNIST)")
    ap.add_argument("--modconv", choices=["ada", "act"], default="ada",
                    help="ada: ada's modulated_conv2d (per-sample weights for dcoefs, fma); act: the cheaper dcoefs")
    ap.add_argument("--seed", type=int, default=0)
    return ap.parse_args()


def main():
    args = parse_args()
    threads = int(os.environ.get("OMP_NUM_THREADS", "2"))
    torch.set_num_threads(threads)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    device = torch.device("cpu")
    tpp.FIR[0] = tck.fir(device)
    SmallSynthesisLayer.ada = args.modconv == "ada"
    batch = args.batch
    if batch % Small.mbstd_group != 0:
        raise SystemExit(f"torch_train_loop.py: --batch {batch} is not a multiple of the mbstd group {Small.mbstd_group}")

    images, data_desc = load_images(args.data, gen)
    batches = Batches(images, batch, gen)

    G = SmallGenerator().train().requires_grad_(False).to(device)
    D = SmallDiscriminator().train().requires_grad_(False).to(device)
    G_ema = copy.deepcopy(G).eval()
    nG, nD = sum(p.numel() for p in G.parameters()), sum(p.numel() for p in D.parameters())

    gamma, ema_kimg = Small.gamma(batch), Small.ema_kimg(batch)
    loss = StyleGAN2Loss(G.mapping, G.synthesis, D, gamma)
    phases = []
    for name, module, reg_interval in [("G", G, Small.pl_interval), ("D", D, Small.r1_interval)]:
        mb_ratio = reg_interval / (reg_interval + 1)
        opt = torch.optim.Adam(module.parameters(), lr=Small.lr * mb_ratio,
                               betas=[beta**mb_ratio for beta in Small.betas], eps=1e-8)
        phases += [Phase(name + "main", module, opt, 1), Phase(name + "reg", module, opt, reg_interval)]

    warm_batches = math.ceil(args.warmup_kimg * 1000 / batch - 1e-9)
    total_batches = math.ceil((args.warmup_kimg + args.kimg) * 1000 / batch - 1e-9)
    timed_batches = total_batches - warm_batches
    if timed_batches <= 0:
        raise SystemExit("torch_train_loop.py: --kimg gives no timed minibatch")

    tpp.info()
    print(f"# threads: torch.get_num_threads()={torch.get_num_threads()} (OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}), "
          f"OpenMP wait policy {wait_policy()}")
    print(f"# torch train loop: stylegan2-ada-pytorch-style loop, cfg small 32x32x{Small.img_ch}, batch {batch}, f32, "
          f"modconv {args.modconv}, gamma {gamma:g}, ema_kimg {ema_kimg:g} (rampup {Small.ema_rampup}), "
          f"G {nG} params, D {nD} params; data: {data_desc}")
    same = nG == Small.stylegrad_G_params and nD == Small.stylegrad_D_params
    print(f"params impl=torch G={nG} D={nD} stylegrad_small_G={Small.stylegrad_G_params} "
          f"stylegrad_small_D={Small.stylegrad_D_params} {'same' if same else 'DIFFERENT'}")
    print(f"# minibatches: {warm_batches} untimed (warmup {args.warmup_kimg:g} kimg), then {timed_batches} timed "
          f"(indices {warm_batches}..{total_batches - 1})", flush=True)

    phase_s = {p.name: 0.0 for p in phases}
    phase_n = {p.name: 0 for p in phases}
    other_s = {"data": 0.0, "Gema": 0.0}
    cur_nimg = 0
    t_start, t_timed = time.perf_counter(), None
    for batch_idx in range(total_batches):
        timed = batch_idx >= warm_batches
        if batch_idx == warm_batches:
            t_timed = time.perf_counter()
            print(f"# warmup: {warm_batches} minibatches in {t_timed - t_start:.2f} s (not timed)", flush=True)
        t0 = time.perf_counter()
        # Fetch training data.
        phase_real_img = batches.next().to(device).to(torch.float32) / 127.5 - 1
        all_gen_z = torch.randn([len(phases) * batch, Small.z_dim], device=device)
        all_gen_z = list(all_gen_z.split(batch))
        t1 = time.perf_counter()
        if timed:
            other_s["data"] += t1 - t0
        # Execute training phases.
        for phase, phase_gen_z in zip(phases, all_gen_z):
            if batch_idx % phase.interval != 0:
                continue
            a = time.perf_counter()
            phase.opt.zero_grad(set_to_none=True)
            phase.module.requires_grad_(True)
            loss.accumulate_gradients(phase.name, phase_real_img, phase_gen_z, gain=phase.interval)
            phase.module.requires_grad_(False)
            for param in phase.module.parameters():
                if param.grad is not None:
                    nan_to_num(param.grad, nan=0, posinf=1e5, neginf=-1e5, out=param.grad)
            phase.opt.step()
            if timed:
                phase_s[phase.name] += time.perf_counter() - a
                phase_n[phase.name] += 1
        # Update G_ema.
        a = time.perf_counter()
        with torch.no_grad():
            ema_nimg = ema_kimg * 1000
            if Small.ema_rampup is not None:
                ema_nimg = min(ema_nimg, cur_nimg * Small.ema_rampup)
            ema_beta = 0.5**(batch / max(ema_nimg, 1e-8))
            for p_ema, p in zip(G_ema.parameters(), G.parameters()):
                p_ema.copy_(p.lerp(p_ema, ema_beta))
            for b_ema, b in zip(G_ema.buffers(), G.buffers()):
                b_ema.copy_(b)
        if timed:
            other_s["Gema"] += time.perf_counter() - a
        cur_nimg += batch
    total_s = time.perf_counter() - t_timed
    timed_kimg = timed_batches * batch / 1000
    s_per_kimg = total_s / timed_kimg

    def mean(name):
        m = _counters.get(name)
        return float(m[1] / m[0]) if m is not None and m[0] > 0 else float("nan")

    print(f"# losses (means over the run): G {mean('Loss/G/loss'):.4f} D {mean('Loss/D/loss'):.4f} "
          f"pl_penalty {mean('Loss/pl_penalty'):.4f} r1_penalty {mean('Loss/r1_penalty'):.4f} "
          f"pl_mean {float(loss.pl_mean):.4f}")
    shares = " ".join(f"{k}={v:.2f}s/{phase_n[k]}" for k, v in phase_s.items())
    shares += " " + " ".join(f"{k}={v:.2f}s" for k, v in other_s.items())
    print(f"# timed part by phase (seconds/count): {shares}")
    print(f"result impl=torch s_per_kimg={s_per_kimg:.2f} seconds={total_s:.2f} kimg={timed_kimg:.3f} "
          f"minibatches={timed_batches} threads={torch.get_num_threads()} torch={torch.__version__} modconv={args.modconv}")
    for p in G.parameters():
        if not torch.isfinite(p).all():
            print("torch_train_loop.py: G has non-finite parameters", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
