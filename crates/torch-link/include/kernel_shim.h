// What every C++ kernel file of the workspace needs at its C boundary: an exception guard
// (no C++ exception may cross into Rust) and the CPU feature test of the vector paths.
// `torch_link::compile_cpp` puts this folder on the include path.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <cstring>
#include <exception>

namespace kernel_shim {

inline void set_error(char *err, size_t cap, const char *what) {
  if (err != nullptr && cap > 0) {
    std::strncpy(err, what, cap - 1);
    err[cap - 1] = '\0';
  }
}

// Runs make() and hands its tensor to *out (owned by the caller: tch's `Tensor::from_ptr`);
// returns 0, or -1 with the exception's message in err.
template <class Make> int guarded(Make make, at::Tensor **out, char *err, size_t cap) {
  try {
    *out = new at::Tensor(make());
    return 0;
  } catch (const c10::Error &e) {
    // libtorch's own checks: the message without the C++ backtrace.
    set_error(err, cap, e.what_without_backtrace());
    return -1;
  } catch (const std::exception &e) {
    set_error(err, cap, e.what());
    return -1;
  } catch (...) {
    set_error(err, cap, "unknown C++ exception");
    return -1;
  }
}

// AVX2 with FMA, tested once: the vector paths' run-time dispatch.
inline bool has_avx2() {
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return yes;
}

} // namespace kernel_shim
