#!/usr/bin/env python3
"""The PyTorch reference of the FID Inception-v3, with random weights, for tests/test_inception.cpp.

    inception_reference.py OUT_DIR

Builds the network FID is computed with (pytorch-fid's InceptionV3 with use_fid_inception:
torchvision's Inception-v3 stem and Mixed_6a / Mixed_7a, the FIDInceptionA / C / E_1 / E_2
blocks, average pooling that leaves padding out of the count, max pooling in Mixed_7c's pool
branch, pool3 features) from torch.nn, layer for layer and name for name, so its state dict
has the keys of pt_inception-2015-12-05-6726825d.pth. pytorch-fid itself needs torchvision,
which Debian 12 does not package (and PyPI's wheels are built for other torch versions), so
the architecture is written out here from pytorch-fid's and torchvision's definitions.

Writes into OUT_DIR:
  inception.safetensors    the state dict (seeded random weights and batch-norm statistics,
                           saved as random.pth, then removed) converted by
                           scripts/convert_inception.py
  io.safetensors           inputs in [-1, 1] and the reference's 2048-d features, in float64:
                           a [2, 3, 32, 32] (upsampled to 299), b [1, 3, 300, 320] (downsampled)
Exits non-zero on any failure (a missing torch fails the test, it is not skipped).
"""
import os
import subprocess
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
from convert_inception import save_safetensors  # noqa: E402


class Conv(nn.Module):
    """torchvision's BasicConv2d: conv (no bias), batch norm (eps 0.001), ReLU."""

    def __init__(self, cin, cout, kernel, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


def avg3(x):  # TensorFlow's average pool: padding not counted
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


class BlockA(nn.Module):  # FIDInceptionA
    def __init__(self, cin, pool):
        super().__init__()
        self.branch1x1 = Conv(cin, 64, 1)
        self.branch5x5_1 = Conv(cin, 48, 1)
        self.branch5x5_2 = Conv(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = Conv(cin, 64, 1)
        self.branch3x3dbl_2 = Conv(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = Conv(96, 96, 3, padding=1)
        self.branch_pool = Conv(cin, pool, 1)

    def forward(self, x):
        a = self.branch1x1(x)
        b = self.branch5x5_2(self.branch5x5_1(x))
        c = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        d = self.branch_pool(avg3(x))
        return torch.cat([a, b, c, d], 1)


class BlockB(nn.Module):  # torchvision's InceptionB (Mixed_6a)
    def __init__(self, cin):
        super().__init__()
        self.branch3x3 = Conv(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = Conv(cin, 64, 1)
        self.branch3x3dbl_2 = Conv(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = Conv(96, 96, 3, stride=2)

    def forward(self, x):
        a = self.branch3x3(x)
        b = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([a, b, F.max_pool2d(x, 3, stride=2)], 1)


class BlockC(nn.Module):  # FIDInceptionC
    def __init__(self, cin, c7):
        super().__init__()
        self.branch1x1 = Conv(cin, 192, 1)
        self.branch7x7_1 = Conv(cin, c7, 1)
        self.branch7x7_2 = Conv(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = Conv(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = Conv(cin, c7, 1)
        self.branch7x7dbl_2 = Conv(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = Conv(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = Conv(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = Conv(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = Conv(cin, 192, 1)

    def forward(self, x):
        a = self.branch1x1(x)
        b = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        c = self.branch7x7dbl_1(x)
        for m in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            c = m(c)
        d = self.branch_pool(avg3(x))
        return torch.cat([a, b, c, d], 1)


class BlockD(nn.Module):  # torchvision's InceptionD (Mixed_7a)
    def __init__(self, cin):
        super().__init__()
        self.branch3x3_1 = Conv(cin, 192, 1)
        self.branch3x3_2 = Conv(192, 320, 3, stride=2)
        self.branch7x7x3_1 = Conv(cin, 192, 1)
        self.branch7x7x3_2 = Conv(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = Conv(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = Conv(192, 192, 3, stride=2)

    def forward(self, x):
        a = self.branch3x3_2(self.branch3x3_1(x))
        b = self.branch7x7x3_1(x)
        for m in (self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            b = m(b)
        return torch.cat([a, b, F.max_pool2d(x, 3, stride=2)], 1)


class BlockE(nn.Module):  # FIDInceptionE_1 (avg pool) and FIDInceptionE_2 (max pool)
    def __init__(self, cin, max_pool):
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = Conv(cin, 320, 1)
        self.branch3x3_1 = Conv(cin, 384, 1)
        self.branch3x3_2a = Conv(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = Conv(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = Conv(cin, 448, 1)
        self.branch3x3dbl_2 = Conv(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = Conv(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = Conv(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = Conv(cin, 192, 1)

    def forward(self, x):
        a = self.branch1x1(x)
        b = self.branch3x3_1(x)
        b = torch.cat([self.branch3x3_2a(b), self.branch3x3_2b(b)], 1)
        c = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        c = torch.cat([self.branch3x3dbl_3a(c), self.branch3x3dbl_3b(c)], 1)
        p = F.max_pool2d(x, 3, stride=1, padding=1) if self.max_pool else avg3(x)
        return torch.cat([a, b, c, self.branch_pool(p)], 1)


class FIDInception(nn.Module):
    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = Conv(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = Conv(32, 32, 3)
        self.Conv2d_2b_3x3 = Conv(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = Conv(64, 80, 1)
        self.Conv2d_4a_3x3 = Conv(80, 192, 3)
        self.Mixed_5b = BlockA(192, 32)
        self.Mixed_5c = BlockA(256, 64)
        self.Mixed_5d = BlockA(288, 64)
        self.Mixed_6a = BlockB(288)
        self.Mixed_6b = BlockC(768, 128)
        self.Mixed_6c = BlockC(768, 160)
        self.Mixed_6d = BlockC(768, 160)
        self.Mixed_6e = BlockC(768, 192)
        self.Mixed_7a = BlockD(768)
        self.Mixed_7b = BlockE(1280, max_pool=False)
        self.Mixed_7c = BlockE(2048, max_pool=True)
        self.fc = nn.Linear(2048, 1008)  # in the real file; unused by FID

    def forward(self, images01):
        """pytorch-fid's InceptionV3()(x)[0] flattened: x in [0, 1], any size."""
        x = F.interpolate(images01, size=(299, 299), mode="bilinear", align_corners=False)
        x = 2 * x - 1
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, 3, stride=2)
        for name in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"):
            x = getattr(self, "Mixed_" + name)(x)
        return F.adaptive_avg_pool2d(x, (1, 1)).flatten(1)


def randomize(model, g):
    """He-scaled conv weights and random batch-norm statistics, so that activations keep
    their scale through the 94 layers (default init shrinks them to nothing)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            fan_in = m.weight[0].numel()
            m.weight.data = torch.randn(m.weight.shape, generator=g) * (2.0 / fan_in) ** 0.5
        elif isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.weight.data = 0.5 + torch.rand(c, generator=g)
            m.bias.data = 0.2 * torch.randn(c, generator=g)
            m.running_mean.data = 0.2 * torch.randn(c, generator=g)
            m.running_var.data = 0.5 + torch.rand(c, generator=g)
        elif isinstance(m, nn.Linear):
            m.weight.data = 0.01 * torch.randn(m.weight.shape, generator=g)
            m.bias.data.zero_()


def main(out_dir):
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    os.makedirs(out_dir, exist_ok=True)
    g = torch.Generator().manual_seed(2015)
    model = FIDInception().eval()
    randomize(model, g)
    pth = os.path.join(out_dir, "random.pth")
    torch.save(model.state_dict(), pth)
    subprocess.run(
        [sys.executable, os.path.join(ROOT, "scripts", "convert_inception.py"), pth,
         os.path.join(out_dir, "inception.safetensors")],
        check=True,
    )
    os.remove(pth)  # 95 MB; the converted file is what the test reads
    a = torch.rand(2, 3, 32, 32, generator=g, dtype=torch.float64) * 2 - 1
    b = torch.rand(1, 3, 300, 320, generator=g, dtype=torch.float64) * 2 - 1
    model = model.double()
    with torch.no_grad():
        fa = model((a + 1) / 2)
        fb = model((b + 1) / 2)
    save_safetensors(os.path.join(out_dir, "io.safetensors"), {"a": a, "features_a": fa, "b": b, "features_b": fb},
                     {"seed": 2015})
    print(f"inception_reference: features |a| max {fa.abs().max():.4g} mean {fa.abs().mean():.4g}, "
          f"|b| max {fb.abs().max():.4g}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__.strip())
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
