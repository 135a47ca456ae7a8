#!/usr/bin/env python3
"""PyTorch 2.x twin of bench/bench_cuda_kernels.cpp: the same cases on the same GPU, f32,
forward only, the same protocol; bench/run_cuda_bench.sh joins the two outputs.

The case list is the C++ program's (one source of truth):
    build-gpu/bench_cuda_kernels --list > cases.txt
    python3 bench/torch_cuda_kernels.py --cases cases.txt [--quick]

Protocol (as the C++ side): `warmup` untimed calls, then `reps` timed calls; before each a
buffer of 2 x L2 bytes is written (no input is served from L2); CUDA events on the current
stream around the call; median (and min). torch.backends.cudnn.benchmark = True (the warm-up
calls autotune). TF32: allowed (cuDNN and cuBLAS) only for the `tf32` variants (and modconv's
`*_tf32`); off otherwise. bf16 variants (and modconv's `*_bf16`) run on bf16 tensors (what
torch.autocast(dtype=torch.bfloat16) does for a conv).

What each op is in PyTorch:
  conv2d / conv_transpose2d   F.conv2d / F.conv_transpose2d (cuDNN)
  conv2d_weight_grad          torch.nn.grad.conv2d_weight (aten::convolution_backward, cuDNN)
  modconv fused               the seed notebook's grouped conv (seed 002, ModulatedConv2d):
                              w' = weight * styles, demodulated, F.conv2d(groups=N); up 2 as
                              StyleGAN2's conv2d_resample: grouped stride-2 transposed conv,
                              then the [1,3,3,1] FIR
  modconv act                 the modulate-activations path: conv(x * styles, weight) * dcoefs
  upfirdn2d up2 / down2       stylegan2-ada's _upfirdn2d_ref (zero insertion, pad, two
                              depthwise 1-D convs, stride) with upsample2d / downsample2d's pads
  bias_act                    F.leaky_relu(x + b, 0.2) * sqrt(2)
  add                         a + b
  adam                        torch.optim.Adam(lr 0.002, betas (0, 0.99), eps 1e-8), fused=True
                              where this torch has it (else foreach)
Ceilings measured in the same run (before the cases), as the C++ side's rooflines:
  roofline_torch matmul_f32_tflops=<> matmul_bf16_tflops=<> d2d_copy_gbs=<>
  (torch.matmul 8192^3 in f32 with TF32 off and in bf16, both through cuBLAS; a 1 GiB
  device-to-device copy, GB/s = 2 x bytes / t)
Output: one line per case,
  case=<name> impl=torch median_ms=<> min_ms=<> reps=<> status=ok [note=<>]
  (or status=error msg=<...>); '#' lines are information.
"""
import argparse
import math
import statistics
import sys

import torch
import torch.nn.functional as F


def parse_cases(path):
    cases = []
    with open(path) as f:
        for line in f:
            if not line.startswith("case="):
                continue
            kv = dict(tok.split("=", 1) for tok in line.split())
            for k in ("N", "C", "H", "W", "stride", "up"):
                kv[k] = int(kv[k])
            cases.append(kv)
    return cases


FIR_TAPS = [1.0, 3.0, 3.0, 1.0]


def fir(device):
    f = torch.tensor(FIR_TAPS, device=device)
    return f / f.sum()


def upfirdn2d_ref(x, f, up, down, pad, gain):
    """stylegan2-ada-pytorch torch_utils/ops/upfirdn2d.py::_upfirdn2d_ref, separable 1-D filter,
    same up/down in x and y, flip_filter=False."""
    N, C, H, W = x.shape
    px0, px1, py0, py1 = pad
    if up > 1:
        x = x.reshape(N, C, H, 1, W, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(N, C, H * up, W * up)
    x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    x = x[:, :, max(-py0, 0): x.shape[2] - max(-py1, 0), max(-px0, 0): x.shape[3] - max(-px1, 0)]
    f = (f * gain ** 0.5).flip(0)
    x = F.conv2d(x, f.view(1, 1, 1, -1).repeat(C, 1, 1, 1), groups=C)
    x = F.conv2d(x, f.view(1, 1, -1, 1).repeat(C, 1, 1, 1), groups=C)
    return x[:, :, ::down, ::down]


def upsample2d(x, f):  # up 2, 4 taps: pad (2, 1, 2, 1), gain 4
    return upfirdn2d_ref(x, f, 2, 1, (2, 1, 2, 1), 4.0)


def downsample2d(x, f):  # down 2, 4 taps: pad (1, 1, 1, 1), gain 1
    return upfirdn2d_ref(x, f, 1, 2, (1, 1, 1, 1), 1.0)


def conv_resample(x, w, f, up, groups):
    """k x k, same size (padding k // 2): up 1 a plain (grouped) conv; up 2 (3x3) StyleGAN2's
    transposed conv + FIR."""
    if up == 1:
        return F.conv2d(x, w, padding=w.shape[-1] // 2, groups=groups)
    O, Cg, kh, kw = w.shape
    if groups == 1:
        wt = w.transpose(0, 1)
    else:
        wt = w.reshape(groups, O // groups, Cg, kh, kw).transpose(1, 2).reshape(groups * Cg, O // groups, kh, kw)
    y = F.conv_transpose2d(x, wt, stride=2, padding=0, groups=groups)
    return upfirdn2d_ref(y, f, 1, 1, (1, 1, 1, 1), 4.0)


def modulated_conv2d(x, weight, styles, fused, up, f, demodulate=True):
    N, C, H, W = x.shape
    O, _, kh, kw = weight.shape
    if fused:  # the seed notebook's ModulatedConv2d.forward (grouped conv)
        w = weight.unsqueeze(0) * styles.view(N, 1, C, 1, 1)
        if demodulate:
            w = w * torch.rsqrt((w ** 2).sum(dim=[2, 3, 4], keepdim=True) + 1e-8)
        y = conv_resample(x.reshape(1, N * C, H, W), w.view(N * O, C, kh, kw), f, up, N)
        return y.view(N, O, y.shape[2], y.shape[3])
    y = conv_resample(x * styles.view(N, C, 1, 1), weight, f, up, 1)
    if not demodulate:
        return y
    d = torch.rsqrt(styles.square() @ weight.square().sum(dim=[2, 3]).t() + 1e-8)
    return y * d.view(N, O, 1, 1)


def make_adam(params):
    kw = dict(lr=0.002, betas=(0.0, 0.99), eps=1e-8)
    try:
        return torch.optim.Adam(params, fused=True, **kw), "fused"
    except (TypeError, RuntimeError, ValueError):
        return torch.optim.Adam(params, foreach=True, **kw), "foreach"


def precision_of(variant):
    """tf32 or bf16 (the variant, or a modconv variant's suffix: act_bf16), else f32."""
    p = variant.rsplit("_", 1)[-1]
    return p if p in ("tf32", "bf16") else "f32"


def prepare(c, gen, dev):
    """Returns (call, note)."""
    op, N, C, H = c["op"], c["N"], c["C"], c["H"]

    # bf16 variants: bf16 inputs and outputs, as torch.autocast(dtype=torch.bfloat16) runs a conv
    dt = torch.bfloat16 if precision_of(c["variant"]) == "bf16" else torch.float32

    def rnd(*shape, scale=1.0):
        return (torch.randn(*shape, generator=gen, device=dev) * scale).to(dt)

    if op == "conv2d":
        x, w, s = rnd(N, C, H, H), rnd(C, C, 3, 3, scale=1 / math.sqrt(9 * C)), c["stride"]
        return (lambda: F.conv2d(x, w, stride=s, padding=1)), ""
    if op == "conv_transpose2d":
        x, w = rnd(N, C, H, H), rnd(C, C, 3, 3, scale=1 / math.sqrt(9 * C))
        return (lambda: F.conv_transpose2d(x, w, stride=2, padding=0)), ""
    if op == "conv2d_weight_grad":
        x, dy = rnd(N, C, H, H), rnd(N, C, H, H)
        return (lambda: torch.nn.grad.conv2d_weight(x, (C, C, 3, 3), dy, stride=1, padding=1)), ""
    if op == "modconv":
        x, w = rnd(N, C, H, H), rnd(C, C, 3, 3)
        styles = rnd(N, C, scale=0.2) + 1.0
        fused, up, f = c["variant"].startswith("fused"), c["up"], fir(dev).to(dt)
        note = "grouped_conv(seed_notebook)" if fused else "modulate_activations"
        return (lambda: modulated_conv2d(x, w, styles, fused, up, f)), note
    if op == "torgb":
        x, w, dy = rnd(N, C, H, H), rnd(3, C, 1, 1, scale=1 / math.sqrt(C)), rnd(N, 3, H, H)
        if c["variant"] == "fwd":
            return (lambda: F.conv2d(x, w)), ""
        return (lambda: torch.nn.grad.conv2d_weight(x, (3, C, 1, 1), dy)), ""
    if op == "upfirdn2d":
        x, f = rnd(N, C, H, H), fir(dev)
        if c["variant"] == "up2":
            return (lambda: upsample2d(x, f)), "upfirdn2d_ref"
        return (lambda: downsample2d(x, f)), "upfirdn2d_ref"
    if op == "bias_act":
        x, b, g = rnd(N, C, H, H), rnd(C), math.sqrt(2.0)
        return (lambda: F.leaky_relu(x + b.view(1, -1, 1, 1), 0.2) * g), "composite"
    if op == "add":
        a, b = rnd(N, C, H, H), rnd(N, C, H, H)
        return (lambda: a + b), ""
    if op == "adam":
        params = []
        for _ in range(N):
            for shape in ((C, H, 3, 3), (C, H), (C,)):
                p = torch.nn.Parameter(rnd(*shape, scale=0.1))
                p.grad = rnd(*shape, scale=0.01)
                params.append(p)
        opt, kind = make_adam(params)
        return opt.step, kind
    raise ValueError("unknown op " + op)


class Timer:
    def __init__(self, dev):
        props = torch.cuda.get_device_properties(dev)
        self.l2 = int(getattr(props, "L2_cache_size", 0) or 0)
        self.flush_bytes = max(2 * (self.l2 or 50 << 20), 64 << 20)
        self.flush = torch.empty(self.flush_bytes, dtype=torch.uint8, device=dev)
        self.start = torch.cuda.Event(enable_timing=True)
        self.stop = torch.cuda.Event(enable_timing=True)

    def time(self, fn, warmup, reps):
        for _ in range(warmup):
            fn()
        torch.cuda.synchronize()
        t = []
        for i in range(reps):
            self.flush.fill_(i & 0xFF)
            self.start.record()
            fn()
            self.stop.record()
            self.stop.synchronize()
            t.append(self.start.elapsed_time(self.stop))
        return t


def rooflines(timer, dev, reps):
    """The ceilings of this GPU through cuBLAS and the copy engine (see the docstring)."""
    n, r = 8192, {}
    for name, dtype in (("matmul_f32_tflops", torch.float32), ("matmul_bf16_tflops", torch.bfloat16)):
        a = torch.randn((n, n), dtype=dtype, device=dev)  # random: constant data can run faster
        b = torch.randn((n, n), dtype=dtype, device=dev)
        ms = statistics.median(timer.time(lambda: torch.matmul(a, b), 2, reps))
        r[name] = 2.0 * n ** 3 / (ms * 1e-3) * 1e-12
        del a, b
    src = torch.ones(1 << 30, dtype=torch.uint8, device=dev)
    dst = torch.empty_like(src)
    ms = statistics.median(timer.time(lambda: dst.copy_(src), 2, reps))
    r["d2d_copy_gbs"] = 2.0 * (1 << 30) / (ms * 1e-3) * 1e-9
    return r


def set_tf32(on):
    torch.backends.cuda.matmul.allow_tf32 = on
    torch.backends.cudnn.allow_tf32 = on


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", required=True, help="output of bench_cuda_kernels --list")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    cases = parse_cases(args.cases)
    if not cases:
        print(f"# FATAL: no case= lines in {args.cases}", flush=True)
        return 1
    print(f"# torch {torch.__version__} cuda {torch.version.cuda} cudnn {torch.backends.cudnn.version()} "
          f"python {sys.executable}", flush=True)
    if not torch.cuda.is_available():
        print("#### no GPU: nothing measured (torch.cuda.is_available() is False) ####", flush=True)
        return 0
    dev = torch.device("cuda")
    torch.backends.cudnn.benchmark = True
    warmup, reps = (2, 5) if args.quick else (3, 15)
    timer = Timer(dev)
    print(f"# device=\"{torch.cuda.get_device_name(dev)}\" l2_bytes={timer.l2} flush_bytes={timer.flush_bytes} "
          f"warmup={warmup} reps={reps} (median) cudnn.benchmark=True", flush=True)
    set_tf32(False)
    try:
        roof = rooflines(timer, dev, 3 if args.quick else 5)
        print("roofline_torch " + " ".join(f"{k}={v:.2f}" for k, v in roof.items()), flush=True)
    except Exception as e:  # the cases still run
        print("roofline_torch FAILED: " + str(e).replace("\n", " "), flush=True)
    torch.cuda.empty_cache()
    gen = torch.Generator(device=dev).manual_seed(1234)
    failed = 0
    with torch.no_grad():
        for c in cases:
            line = f"case={c['case']} impl=torch "
            try:
                set_tf32(precision_of(c["variant"]) == "tf32")
                fn, note = prepare(c, gen, dev)
                t = timer.time(fn, warmup, reps)
                line += f"median_ms={statistics.median(t):.4f} min_ms={min(t):.4f} reps={reps} status=ok"
                if note:
                    line += f" note={note}"
            except Exception as e:  # report and go on, as the C++ side does
                failed += 1
                line += "status=error msg=" + str(e).replace("\n", " ")
            finally:
                set_tf32(False)
            print(line, flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
