// TensorBoard event files, written from scratch (no protobuf library): what
// torch.utils.tensorboard's SummaryWriter writes, and what stylegan2-ada-pytorch's training
// loop writes through it, so `tensorboard --logdir RUN_DIR` shows a run.
//
// File: RUN_DIR/events.out.tfevents.<seconds, 10 digits>.<hostname>.<pid>.<n>, the name
// TensorBoard's own EventFileWriter gives (TensorBoard reads every file whose name holds
// "tfevents"). A sequence of TFRecords:
//   uint64 length (little endian), uint32 masked_crc32c(the 8 length bytes),
//   data[length], uint32 masked_crc32c(data)
// with masked_crc32c(x) = ((crc >> 15) | (crc << 17)) + 0xa282ead8 of CRC32C (Castagnoli).
// Each record's data is a serialized tensorboard.Event (tensorboard/compat/proto/event.proto,
// summary.proto):
//   Event   { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
//   Summary { repeated Value value = 1; }
//   Value   { string tag = 1; float simple_value = 2; Image image = 4; }
//   Image   { int32 height = 1; int32 width = 2; int32 colorspace = 3; bytes encoded_image_string = 4; }
// The first record is Event{wall_time: now, file_version: "brain.Event:2"}.
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "train/image_io.h"

namespace sg::tensorboard {

// CRC32C (Castagnoli, reflected polynomial 0x82F63B78; crc32c("123456789") = 0xE3069283).
uint32_t crc32c(const void* data, size_t n);
// The TFRecord form: ((crc >> 15) | (crc << 17)) + 0xa282ead8.
uint32_t masked_crc32c(const void* data, size_t n);

// The serialized Events (tests read them back to check the encoding).
std::string file_version_event(double wall_time);
std::string scalars_event(const std::vector<std::pair<std::string, double>>& values, int64_t step, double wall_time);
std::string image_event(const std::string& tag, const data::Image& img, int64_t step, double wall_time);
// One TFRecord around `data`.
std::string tfrecord(const std::string& data);

// Reads every record of an events file, checking the framing and both CRCs of each; sg::Error
// naming the file and the byte offset on a truncated record or a CRC mismatch.
std::vector<std::string> read_records(const std::string& path);

class EventWriter {
 public:
  // Creates a new events file in `dir` (which must exist) and writes the file_version event.
  // sg::Error naming the file when it cannot be created.
  explicit EventWriter(const std::string& dir);
  ~EventWriter();  // closes (errors ignored: call close() to see them)
  EventWriter(const EventWriter&) = delete;
  EventWriter& operator=(const EventWriter&) = delete;

  // One Event holding a simple_value per (tag, value) (values are stored as float, as
  // TensorBoard's simple_value is). Each call is flushed to the file before it returns.
  void add_scalars(const std::vector<std::pair<std::string, double>>& values, int64_t step, double wall_time);
  // One Event holding the image as PNG (colorspace: its channel count).
  void add_image(const std::string& tag, const data::Image& img, int64_t step, double wall_time);
  // Closes the file; sg::Error naming it if the last bytes cannot be written.
  void close();
  const std::string& path() const { return path_; }

 private:
  void write_record(const std::string& event);
  std::string path_;
  std::FILE* f_ = nullptr;
};

}  // namespace sg::tensorboard
