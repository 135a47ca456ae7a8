#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets: fuzz/corpus/<target>/, a few small valid and
near-valid inputs each (docs/fuzzing.md). Usage: fuzz/make_corpus.py [OUT_DIR]
(default: fuzz/corpus next to this script). The files are committed; rerun it only to change
them. PNG, idx and safetensors seeds are written here; the JPEG seeds by a small C program
compiled against libjpeg-turbo (cc, libjpeg62-turbo-dev)."""
import os
import struct
import subprocess
import sys
import tempfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "corpus")


def put(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- PNG ----------------------------------------------------------------------------------
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png(w, h, depth, color, rows, extra=b"", interlace=0, crc_ok=True):
    ihdr = struct.pack(">IIBBBBB", w, h, depth, color, 0, 0, interlace)
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + extra + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    if not crc_ok:
        out = out[:29] + bytes([out[29] ^ 0xFF]) + out[30:]  # IHDR's CRC
    return out


def rows(w, h, bytes_per_pixel_num, bytes_per_pixel_den=1, filt=0):
    n = (w * bytes_per_pixel_num + bytes_per_pixel_den - 1) // bytes_per_pixel_den
    return b"".join(bytes([filt]) + bytes((x * 37 + y * 11) & 0xFF for x in range(n)) for y in range(h))


put("fuzz_image", "gray8.png", png(8, 8, 8, 0, rows(8, 8, 1)))
put("fuzz_image", "gray1.png", png(16, 4, 1, 0, rows(16, 4, 1, 8)))
put("fuzz_image", "gray16.png", png(4, 4, 16, 0, rows(4, 4, 2)))
put("fuzz_image", "gray-alpha8.png", png(4, 4, 8, 4, rows(4, 4, 2)))
put("fuzz_image", "rgb8-paeth.png", png(6, 5, 8, 2, rows(6, 5, 3, filt=4)))
put("fuzz_image", "rgba8.png", png(5, 5, 8, 6, rows(5, 5, 4, filt=1)))
put("fuzz_image", "rgba16.png", png(3, 3, 16, 6, rows(3, 3, 8, filt=2)))
plte = chunk(b"PLTE", bytes(range(48)))
put("fuzz_image", "palette4-trns.png", png(8, 4, 4, 3, rows(8, 4, 1, 2), plte + chunk(b"tRNS", b"\x00\x80\xff")))
put("fuzz_image", "rgb8-gamma.png", png(4, 4, 8, 2, rows(4, 4, 3), chunk(b"gAMA", struct.pack(">I", 100000))))
# Adam7: the interlaced rows of an 8x8 RGB image, pass by pass (pass sizes 1x1 1x1 2x1 2x2 4x2 4x4 8x4).
adam7 = b"".join(rows(pw, ph, 3) for pw, ph in [(1, 1), (1, 1), (2, 1), (2, 2), (4, 2), (4, 4), (8, 4)])
put("fuzz_image", "rgb8-interlaced.png", png(8, 8, 8, 2, adam7, interlace=1))
good = png(8, 8, 8, 2, rows(8, 8, 3))
put("fuzz_image", "truncated.png", good[: len(good) // 2])
put("fuzz_image", "bad-crc.png", png(4, 4, 8, 0, rows(4, 4, 1), crc_ok=False))
put("fuzz_image", "huge-header.png", png(100000, 100000, 8, 6, b"\x00" * 64))

# ---- JPEG: through libjpeg-turbo's compressor ------------------------------------------------
JPEG_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>
/* jpeg OUT W H COMPONENTS(1,3,4) PROGRESSIVE ARITH RESTART SUBSAMPLE */
int main(int argc, char** argv) {
  struct jpeg_compress_struct c; struct jpeg_error_mgr e;
  int w = atoi(argv[2]), h = atoi(argv[3]), n = atoi(argv[4]);
  FILE* f = fopen(argv[1], "wb");
  c.err = jpeg_std_error(&e); jpeg_create_compress(&c); jpeg_stdio_dest(&c, f);
  c.image_width = w; c.image_height = h; c.input_components = n;
  c.in_color_space = n == 1 ? JCS_GRAYSCALE : n == 3 ? JCS_RGB : JCS_CMYK;
  jpeg_set_defaults(&c); jpeg_set_quality(&c, 75, TRUE);
  if (atoi(argv[5])) jpeg_simple_progression(&c);
  c.arith_code = atoi(argv[6]);
  c.restart_interval = atoi(argv[7]);
  if (!atoi(argv[8])) c.comp_info[0].h_samp_factor = c.comp_info[0].v_samp_factor = 1;
  jpeg_start_compress(&c, TRUE);
  unsigned char* row = malloc((size_t)w * n);
  while (c.next_scanline < c.image_height) {
    for (int x = 0; x < w * n; ++x) row[x] = (unsigned char)(x * 7 + c.next_scanline * 13);
    JSAMPROW r = row; jpeg_write_scanlines(&c, &r, 1);
  }
  jpeg_finish_compress(&c); jpeg_destroy_compress(&c); fclose(f); free(row);
  return 0;
}
"""
with tempfile.TemporaryDirectory() as tmp:
    src, exe = os.path.join(tmp, "jpeg.c"), os.path.join(tmp, "jpeg")
    with open(src, "w") as f:
        f.write(JPEG_C)
    subprocess.run(["cc", "-O1", "-o", exe, src, "-ljpeg"], check=True)

    def jpeg(name, w, h, n, progressive=0, arith=0, restart=0, subsample=1):
        path = os.path.join(tmp, name)
        subprocess.run([exe, path, str(w), str(h), str(n), str(progressive), str(arith), str(restart), str(subsample)],
                       check=True)
        with open(path, "rb") as f:
            return f.read()

    put("fuzz_image", "gray.jpg", jpeg("g", 16, 16, 1))
    put("fuzz_image", "rgb420.jpg", jpeg("a", 16, 16, 3))
    put("fuzz_image", "rgb444-restart.jpg", jpeg("b", 24, 8, 3, restart=1, subsample=0))
    put("fuzz_image", "rgb-progressive.jpg", jpeg("c", 16, 16, 3, progressive=1))
    put("fuzz_image", "rgb-arith.jpg", jpeg("d", 16, 8, 3, arith=1))
    put("fuzz_image", "cmyk.jpg", jpeg("e", 8, 8, 4))
    t = jpeg("f", 16, 16, 3)
    put("fuzz_image", "truncated.jpg", t[: len(t) * 2 // 3])
    # A DHT whose code counts sum to 320 (at most 256 codes fit), in front of a valid file.
    dht = b"\xff\xc4" + struct.pack(">H", 2 + 1 + 16 + 320) + b"\x00" + bytes([20] * 16) + b"\x01" * 320
    g = jpeg("h", 8, 8, 1)
    put("fuzz_image", "bogus-huffman.jpg", g[:2] + dht + g[2:])

# ---- idx ----------------------------------------------------------------------------------
def idx(n, r, c, count=None):
    return struct.pack(">IIII", 0x803, n if count is None else count, r, c) + bytes((i * 29) & 0xFF for i in range(n * r * c))


def gz(data):
    z = zlib.compressobj(9, zlib.DEFLATED, 16 + 15)
    return z.compress(data) + z.flush()


put("fuzz_idx", "plain-3x4x5", idx(3, 4, 5))
put("fuzz_idx", "gzip-2x8x8", gz(idx(2, 8, 8)))
put("fuzz_idx", "gzip-two-members", gz(idx(2, 3, 3)[:20]) + gz(idx(2, 3, 3)[20:]))
put("fuzz_idx", "gzip-trailing-garbage", gz(idx(1, 4, 4)) + b"not gzip")
put("fuzz_idx", "zero-images", idx(0, 28, 28))
put("fuzz_idx", "liar-count", idx(1, 28, 28, count=3000000)[:73])
put("fuzz_idx", "truncated-gzip", gz(idx(4, 8, 8))[:40])
put("fuzz_idx", "labels-magic", struct.pack(">II", 0x801, 3) + b"\x01\x02\x03")


# ---- safetensors ----------------------------------------------------------------------------
def safetensors(header, data=b"", pad=True):
    h = header.encode()
    if pad:
        h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


f32 = struct.pack("<6f", 1, 2, 3, 4, 5, 6)
f64 = struct.pack("<2d", -1.5, 2.25)
put("fuzz_safetensors", "two-tensors-metadata.safetensors", safetensors(
    '{"__metadata__":{"kimg":"12","format":"pt"},"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},'
    '"b":{"dtype":"F64","shape":[2],"data_offsets":[24,40]}}', f32 + f64))
put("fuzz_safetensors", "scalar-and-empty.safetensors", safetensors(
    '{"s":{"dtype":"F64","shape":[],"data_offsets":[0,8]},"e":{"dtype":"F32","shape":[0,5],"data_offsets":[8,8]}}',
    struct.pack("<d", 3.0)))
put("fuzz_safetensors", "escapes.safetensors", safetensors(
    '{"__metadata__":{"k\\u00e9y":"v\\"\\\\\\n\\ud83d\\ude00"},"x\\/y":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}',
    struct.pack("<f", 0.5)))
put("fuzz_safetensors", "overlap.safetensors", safetensors(
    '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}',
    bytes(12)))
put("fuzz_safetensors", "f16.safetensors", safetensors('{"h":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}', bytes(4)))
put("fuzz_safetensors", "truncated-data.safetensors", safetensors(
    '{"w":{"dtype":"F32","shape":[4,4],"data_offsets":[0,64]}}', bytes(20)))
put("fuzz_safetensors", "bad-header-length", struct.pack("<Q", 1 << 40) + b"{}")
put("fuzz_safetensors", "deep-json.safetensors", safetensors('{"__metadata__":' + "[" * 70 + "]" * 70 + "}"))
# an empty tensor name: the reader must refuse it (fuzz_safetensors found it crash the target in CI)
put("fuzz_safetensors", "empty-name.safetensors", safetensors('{"":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}', bytes(4)))
