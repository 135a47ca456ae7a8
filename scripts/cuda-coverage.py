#!/usr/bin/env python3
"""Line coverage of kernels/cuda/ on the CUDA emulator, from gcov.

Usage: scripts/cuda-coverage.py BUILD_DIR [--min PERCENT] [--out FILE]

BUILD_DIR is a build configured with -DSG_CUDA_EMU=ON -DSG_CUDA_EMU_COVERAGE=ON in which
sg_cuda_tests has run (the .gcda files exist). For every source under kernels/cuda/ (the
emulator's own folder excluded) a line counts as covered when any compiled instance of it
ran. Prints one row per file, the total, and the lines never run; exits 1 when the total
is below --min (default 0: report only)."""
import argparse
import glob
import json
import os
import subprocess
import sys

ap = argparse.ArgumentParser()
ap.add_argument("build_dir")
ap.add_argument("--min", type=float, default=0.0)
ap.add_argument("--out")
args = ap.parse_args()

src = os.path.realpath(os.path.join(os.path.dirname(__file__), "..", "kernels", "cuda"))
gcdas = glob.glob(os.path.join(os.path.abspath(args.build_dir), "CMakeFiles", "sg_kernels.dir", "cuda_emu", "*.gcda"))
if not gcdas:
    sys.exit(f"cuda-coverage: no .gcda files under {args.build_dir}: configure with -DSG_CUDA_EMU=ON "
             "-DSG_CUDA_EMU_COVERAGE=ON and run sg_cuda_tests first")

lines = {}  # file -> {line: count}
for gcda in gcdas:
    out = subprocess.run(["gcov", "--stdout", "--json-format", gcda], cwd=os.path.dirname(gcda),
                         capture_output=True, text=True, check=True).stdout
    for doc in out.splitlines():
        if not doc.strip():
            continue
        for f in json.loads(doc)["files"]:
            path = os.path.realpath(f["file"])
            if not path.startswith(src + os.sep) or os.sep + "emu" + os.sep in path[len(src):]:
                continue
            per = lines.setdefault(path, {})
            for l in f["lines"]:
                per[l["line_number"]] = per.get(l["line_number"], 0) + l["count"]

rows, total, hit, missed = [], 0, 0, []
for path in sorted(lines):
    per = lines[path]
    n, h = len(per), sum(1 for c in per.values() if c > 0)
    total, hit = total + n, hit + h
    rel = os.path.relpath(path, os.path.dirname(os.path.dirname(src)))
    rows.append(f"  {rel:<34} {h:5d} / {n:5d}  {100.0 * h / max(n, 1):6.1f}%")
    missed += [f"  {rel}:{ln}" for ln, c in sorted(per.items()) if c == 0]
pct = 100.0 * hit / max(total, 1)
report = ["line coverage of kernels/cuda/ on the CUDA emulator (gcov; a line counts when any instance ran)"]
report += rows + [f"  {'total':<34} {hit:5d} / {total:5d}  {pct:6.1f}%"]
report += ["lines never run:"] + (missed or ["  none"])
text = "\n".join(report)
print(text)
if args.out:
    with open(args.out, "w") as fh:
        fh.write(text + "\n")
if pct < args.min:
    print(f"cuda-coverage: {pct:.1f}% is below the required {args.min}%", file=sys.stderr)
    sys.exit(1)
