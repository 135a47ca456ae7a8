#!/usr/bin/python3
"""PyTorch CPU twin of bench/bench_cpu_conv.cpp: same cases, f32, same protocol, same output.

Run with Debian's python3 (python3-torch), not a pyenv/venv python:
    OMP_NUM_THREADS=2 /usr/bin/python3 bench/torch_cpu_conv.py [--quick] [--shapes]

  fwd_ms:    forward alone, under torch.no_grad()
  fwdbwd_ms: forward with grad on, then torch.autograd.grad(sum(y * gy), [x, w(, styles)])
Protocol: `warmup` untimed runs, then the median of `reps` timed runs (time.perf_counter).
Output: one line per case,  case=<name> impl=torch fwd_ms=<ms> fwdbwd_ms=<ms>
        and for a modulated conv also  grouped_fwd_ms=<ms> grouped_fwdbwd_ms=<ms>
Lines starting with '#' are information (threads, BLAS, conv backend).

--shapes: the twin of bench_cpu_conv --shapes, every convolution of the small and seed32 networks,
  each pass as PyTorch's autograd runs it: fwd = F.conv2d / F.conv_transpose2d; dgrad and wgrad =
  aten::convolution_backward with output_mask [1,0,0] and [0,1,0] (oneDNN on this build), no grad.
  Output:  shape=<name> impl=torch fwd_ms=<ms> dgrad_ms=<ms> wgrad_ms=<ms>

conv cases: F.conv2d, as the engine's conv2d.
Modulated conv cases (demodulated, eps 1e-8): the stylegrad twin times its fused (grouped) and
its act path as two cases of the same shape; PyTorch is timed on both of its ways for each
such shape (once per shape; the two cases print the same numbers):
  fwd_ms / fwdbwd_ms (the main reference): the modulate-activations path stylegan2-ada-pytorch
          trains with, y = conv(x * styles, weight) * d, one conv with the shared weight,
          d = rsqrt(styles^2 @ sum_k(weight^2)^T + eps)
  grouped_fwd_ms / grouped_fwdbwd_ms (second column): w' = weight * styles,
          d = rsqrt(sum w'^2 + eps), one grouped conv (groups = N), the notebook's / ada's
          fused_modconv
  up=2:   StyleGAN2's conv2d_resample: conv_transpose2d(stride 2) then the separable
          [1,3,3,1] FIR (upfirdn2d ref: pad (1,1,1,1), gain 4, two depthwise 1-D convs).
"""
import os
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

QUICK = "--quick" in sys.argv[1:]
SHAPES = "--shapes" in sys.argv[1:]
for _a in sys.argv[1:]:
    if _a not in ("--quick", "--shapes"):
        sys.exit(f"usage: {sys.argv[0]} [--quick] [--shapes] (unknown option {_a})")
WARMUP, REPS = (1, 3) if QUICK else (3, 11)
torch.set_num_threads(2)

# name, kind, N, C, H, stride, groups, fused, up  (Cin = Cout = C, 3x3, padding 1)
# (fused: which stylegrad path the case times; the torch side times both of its paths)
CASES = [
    ("conv3x3_n4_c128_16", "conv", 4, 128, 16, 1, 1, None, 1),
    ("conv3x3_n4_c256_16", "conv", 4, 256, 16, 1, 1, None, 1),
    ("conv3x3_n8_c64_32", "conv", 8, 64, 32, 1, 1, None, 1),
    ("conv3x3_n4_c128_32", "conv", 4, 128, 32, 1, 1, None, 1),
    ("conv3x3_s2_n4_c128_32", "conv", 4, 128, 32, 2, 1, None, 1),
    ("conv3x3_g4_n4_c256_16", "conv", 4, 256, 16, 1, 4, None, 1),
    ("modconv_fused_n4_c256_16", "mod", 4, 256, 16, 1, 1, True, 1),
    ("modconv_act_n4_c256_16", "mod", 4, 256, 16, 1, 1, False, 1),
    ("modconv_fused_n4_c128_32", "mod", 4, 128, 32, 1, 1, True, 1),
    ("modconv_act_n4_c128_32", "mod", 4, 128, 32, 1, 1, False, 1),
    ("modconv_fused_up2_n4_c128_16to32", "mod", 4, 128, 16, 1, 1, True, 2),
    ("modconv_act_up2_n4_c128_16to32", "mod", 4, 128, 16, 1, 1, False, 2),
]

FIR = torch.tensor([1.0, 3.0, 3.0, 1.0])
FIR = FIR / FIR.sum()


def blur(x, pad=(1, 1, 1, 1), gain=4.0):
    """upfirdn2d with up=down=1, separable 1-D filter, as stylegan2-ada's _upfirdn2d_ref."""
    C = x.shape[1]
    f = FIR.flip(0) * (gain ** 0.5)  # (symmetric, so the flip is a no-op)
    x = F.pad(x, list(pad))
    x = F.conv2d(x, f.view(1, 1, 1, -1).repeat(C, 1, 1, 1), groups=C)
    x = F.conv2d(x, f.view(1, 1, -1, 1).repeat(C, 1, 1, 1), groups=C)
    return x


def conv_resample(x, w, up, groups):
    """conv2d_resample for 3x3, padding 1: up=1 a plain conv; up=2 transposed conv + blur."""
    if up == 1:
        return F.conv2d(x, w, padding=1, groups=groups)
    O, Cg, kh, kw = w.shape
    if groups == 1:
        wt = w.transpose(0, 1)
    else:
        wt = w.reshape(groups, O // groups, Cg, kh, kw).transpose(1, 2).reshape(groups * Cg, O // groups, kh, kw)
    y = F.conv_transpose2d(x, wt, stride=2, padding=0, groups=groups)
    return blur(y, (1, 1, 1, 1), 4.0)


def modulated_conv2d(x, weight, styles, fused, up):
    N, C, H, W = x.shape
    O, _, kh, kw = weight.shape
    if fused:
        w = weight.unsqueeze(0) * styles.reshape(N, 1, C, 1, 1)
        d = (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()
        w = w * d.reshape(N, O, 1, 1, 1)
        y = conv_resample(x.reshape(1, N * C, H, W), w.reshape(N * O, C, kh, kw), up, N)
        return y.reshape(N, O, y.shape[2], y.shape[3])
    y = conv_resample(x * styles.reshape(N, C, 1, 1), weight, up, 1)
    d = (styles.square() @ weight.square().sum(dim=[2, 3]).transpose(0, 1) + 1e-8).rsqrt()
    return y * d.reshape(N, O, 1, 1)


def median_ms(fn):
    for _ in range(WARMUP):
        fn()
    t = []
    for _ in range(REPS):
        a = time.perf_counter()
        fn()
        t.append((time.perf_counter() - a) * 1e3)
    return statistics.median(t)


def make(case, gen, fused=None):
    """Returns (forward, inputs); fused picks the torch path of a modulated conv."""
    name, kind, N, C, H, stride, groups, _, up = case
    x = torch.randn(N, C, H, H, generator=gen).requires_grad_(True)
    if kind == "conv":
        w = torch.randn(C, C // groups, 3, 3, generator=gen).requires_grad_(True)
        inputs = [x, w]
        fwd = lambda: F.conv2d(x, w, stride=stride, padding=1, groups=groups)  # noqa: E731
    else:
        w = torch.randn(C, C, 3, 3, generator=gen).requires_grad_(True)
        s = (torch.randn(N, C, generator=gen) * 0.2 + 1.0).requires_grad_(True)
        inputs = [x, w, s]
        fwd = lambda: modulated_conv2d(x, w, s, fused, up)  # noqa: E731
    return fwd, inputs


def conv_backend_ops(fused):
    """Which aten ops a modulated conv forward + backward dispatches to."""
    gen = torch.Generator().manual_seed(0)
    fwd, inputs = make(next(c for c in CASES if c[1] == "mod" and c[8] == 1), gen, fused)
    with torch.autograd.profiler.profile() as prof:
        y = fwd()
        torch.autograd.grad((y * torch.ones_like(y)).sum(), inputs)
    names = sorted({e.name for e in prof.function_events if "conv" in e.name or "mkldnn" in e.name})
    return names


def check_paths_agree():
    """The two torch paths of a modulated conv compute the same numbers (up=1 and up=2)."""
    for up in (1, 2):
        case = next(c for c in CASES if c[1] == "mod" and c[8] == up)
        fa, _ = make(case, torch.Generator().manual_seed(0), False)
        fg, _ = make(case, torch.Generator().manual_seed(0), True)
        with torch.no_grad():
            a, g = fa(), fg()
        err = ((a - g).abs().max() / a.abs().max()).item()
        assert err < 1e-4, f"modconv act vs grouped differ (up={up}): relative max error {err}"
        print(f"# modconv act vs grouped, up={up}: relative max difference {err:.1e}")


def info():
    print(f"# torch {torch.__version__} from {os.path.dirname(torch.__file__)}, python {sys.executable}")
    print(f"# torch.get_num_threads()={torch.get_num_threads()} OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')} "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')} mkldnn.is_available={torch.backends.mkldnn.is_available()}")
    for line in torch.__config__.show().splitlines():
        if line.strip():
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
    print("# conv ops used (modconv act fwd+bwd): " + " ".join(conv_backend_ops(False)))
    print("# conv ops used (modconv grouped fwd+bwd): " + " ".join(conv_backend_ops(True)))
    check_paths_agree()
    print(f"# warmup={WARMUP} reps={REPS} (median)", flush=True)


def time_case(case, gen, fused=None):
    """(fwd_ms, fwdbwd_ms) of one case; fused picks the torch path of a modulated conv."""
    fwd, inputs = make(case, gen, fused)
    with torch.no_grad():
        gy = torch.randn(fwd().shape, generator=gen)

    def run_fwd():
        with torch.no_grad():
            fwd()

    def run_fwdbwd():
        y = fwd()
        torch.autograd.grad((y * gy).sum(), inputs)

    return median_ms(run_fwd), median_ms(run_fwdbwd)


def model_shapes():
    """The list of bench_cpu_conv.cpp's model_shapes(), same names and order:
    (name, N, Cin, Cout, H, k, stride, padding, transposed)."""
    v = []

    def add(model, what, N, cin, cout, H, k, stride, padding, transposed=False):
        tag = "_up2" if transposed else "_s2" if stride == 2 else ""
        v.append((f"{model}_{what}_c{cin}to{cout}_{H}{tag}_k{k}", N, cin, cout, H, k, stride, padding, transposed))

    for r in (4, 8, 16, 32):
        add("small", "conv", 16, 64, 64, r, 3, 1, 1)
    for r in (4, 8, 16):
        add("small", "Gup", 16, 64, 64, r, 3, 2, 0, True)
    for r in (4, 8, 16, 32):
        add("small", "toRGB", 16, 64, 1, r, 1, 1, 0)
    add("small", "fromRGB", 16, 1, 64, 32, 1, 1, 0)
    for r in (33, 17, 9):
        add("small", "Ddown", 16, 64, 64, r, 3, 2, 0)
    for r in (16, 8, 4):
        add("small", "Dskip", 16, 64, 64, r, 1, 1, 0)
    add("small", "Dmbstd", 16, 65, 64, 4, 3, 1, 1)
    for cin, cout, r in ((384, 384, 4), (384, 384, 8), (384, 192, 8), (192, 192, 8), (192, 384, 8), (192, 192, 16),
                         (192, 96, 16), (96, 96, 16), (96, 192, 16), (96, 96, 32), (96, 48, 32), (48, 48, 32),
                         (48, 96, 32)):
        add("seed32", "conv", 32, cin, cout, r, 3, 1, 1)
    for cin, cout, r in ((384, 384, 4), (192, 384, 8), (96, 192, 16), (48, 96, 32)):
        add("seed32", "skip", 32, cin, cout, r, 1, 1, 0)
    for cin, r in ((384, 4), (192, 8), (96, 16), (48, 32)):
        add("seed32", "toRGB", 32, cin, 3, r, 1, 1, 0)
    add("seed32", "fromRGB", 32, 3, 48, 32, 1, 1, 0)
    return v


def run_shapes():
    print(f"# torch {torch.__version__}, torch.get_num_threads()={torch.get_num_threads()} "
          f"mkldnn.is_available={torch.backends.mkldnn.is_available()}")
    print(f"# warmup={WARMUP} reps={REPS} (median)", flush=True)
    gen = torch.Generator().manual_seed(1234)
    with torch.no_grad():
        for name, N, cin, cout, H, k, stride, padding, transposed in model_shapes():
            x = torch.randn(N, cin, H, H, generator=gen)
            w = torch.randn(*((cin, cout) if transposed else (cout, cin)), k, k, generator=gen)
            if transposed:
                fwd = lambda: F.conv_transpose2d(x, w, stride=stride, padding=padding)  # noqa: E731
            else:
                fwd = lambda: F.conv2d(x, w, stride=stride, padding=padding)  # noqa: E731
            dy = torch.randn(fwd().shape, generator=gen)

            def back(mask):
                return torch.ops.aten.convolution_backward(dy, x, w, None, [stride] * 2, [padding] * 2, [1, 1],
                                                           transposed, [0, 0], 1, mask)

            f = median_ms(fwd)
            dg = median_ms(lambda: back([True, False, False]))
            wg = median_ms(lambda: back([False, True, False]))
            print(f"shape={name} impl=torch fwd_ms={f:.3f} dgrad_ms={dg:.3f} wgrad_ms={wg:.3f}", flush=True)


def main():
    if SHAPES:
        run_shapes()
        return
    info()
    gen = torch.Generator().manual_seed(1234)
    done = {}  # modulated conv shape -> its line's timings
    for case in CASES:
        name, kind, N, C, H, _, _, _, up = case
        if kind == "conv":
            f, fb = time_case(case, gen)
            print(f"case={name} impl=torch fwd_ms={f:.3f} fwdbwd_ms={fb:.3f}", flush=True)
            continue
        shape = (N, C, H, up)
        if shape not in done:
            f, fb = time_case(case, gen, fused=False)
            gf, gfb = time_case(case, gen, fused=True)
            done[shape] = f"fwd_ms={f:.3f} fwdbwd_ms={fb:.3f} grouped_fwd_ms={gf:.3f} grouped_fwdbwd_ms={gfb:.3f}"
        print(f"case={name} impl=torch {done[shape]}", flush=True)


if __name__ == "__main__":
    main()
