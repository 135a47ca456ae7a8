#!/usr/bin/python3
"""Reads a directory of TensorBoard event files with the tensorboard package, as TensorBoard does.

usage: read_tfevents.py LOGDIR OUT_DIR
Prints, one per line:
  files N                                   events files in LOGDIR
  records FILE N                            records of each file, read with CRC checks
  file_version V                            (EventAccumulator's parsed file version)
  scalar TAG STEP VALUE WALL_TIME           every scalar (EventAccumulator.Scalars)
  image TAG STEP WIDTH HEIGHT NBYTES        every image (EventAccumulator.Images); its PNG
                                            bytes are written to OUT_DIR/TAG_STEP.png
Exits 1 when the tensorboard package is missing (scripts/install-deps.sh --test installs it
into .venv-test), or on a corrupt record.
"""
import os
import sys

try:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.compat.tensorflow_stub import errors, pywrap_tensorflow
except ImportError as e:
    sys.exit(f"read_tfevents.py: the tensorboard package is required ({e}); run scripts/install-deps.sh --test")


def main():
    logdir, out_dir = sys.argv[1], sys.argv[2]
    files = sorted(f for f in os.listdir(logdir) if "tfevents" in f)
    print("files", len(files))
    # EventAccumulator stops quietly at a corrupt record; read every record strictly first.
    for name in files:
        reader = pywrap_tensorflow.PyRecordReader_New(os.path.join(logdir, name))
        n = 0
        while True:
            try:
                reader.GetNext()
            except errors.OutOfRangeError:
                break
            n += 1
        print("records", name, n)
    acc = EventAccumulator(logdir, size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    print("file_version", acc.file_version)
    tags = acc.Tags()
    for tag in sorted(tags["scalars"]):
        for e in acc.Scalars(tag):
            print("scalar", tag, e.step, repr(e.value), repr(e.wall_time))
    for tag in sorted(tags["images"]):
        for e in acc.Images(tag):
            with open(os.path.join(out_dir, f"{tag}_{e.step}.png"), "wb") as f:
                f.write(e.encoded_image_string)
            print("image", tag, e.step, e.width, e.height, len(e.encoded_image_string))


if __name__ == "__main__":
    main()
