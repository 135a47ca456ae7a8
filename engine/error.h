// sg::Error and the SG_CHECK macro: every bad input throws an sg::Error whose message names
// the op and the shapes / dtypes / devices involved. Nothing in the engine aborts.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace sg {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};

namespace detail {
inline void append(std::ostringstream&) {}
template <class A, class... R>
void append(std::ostringstream& os, const A& a, const R&... r) {
  os << a;
  append(os, r...);
}
}  // namespace detail

// Builds a message from any streamable pieces: sg::str("conv2d: x ", x.shape(), ...).
template <class... A>
std::string str(const A&... a) {
  std::ostringstream os;
  detail::append(os, a...);
  return os.str();
}

}  // namespace sg

// SG_CHECK(cond, "op_name", pieces...): throws sg::Error("op_name: pieces...") if !cond.
#define SG_CHECK(cond, op, ...)                                       \
  do {                                                                \
    if (!(cond)) throw ::sg::Error(::sg::str(op, ": ", __VA_ARGS__)); \
  } while (0)
