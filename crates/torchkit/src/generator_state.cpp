// Reads and restores the state of libtorch's default generators (what `torch.get_rng_state`
// and `torch.set_rng_state` do in Python), which tch does not expose. A resumed training
// run restores it, so that it draws exactly what the uninterrupted run would have drawn.
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>
#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/randperm.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <cstring>
#include <mutex>

namespace {
at::Generator generator(int device) {
  if (device < 0) return at::globalContext().defaultGenerator(c10::DeviceType::CPU);
  return at::globalContext().defaultGenerator(c10::Device(c10::DeviceType::CUDA, device));
}
} // namespace

extern "C" {

// Copies the state of the default generator of `device` (-1: CPU, n: CUDA n) into `buf`
// when it has room for it; returns the state's size in bytes, or -1 on error.
int64_t torchkit_rng_state(int device, uint8_t *buf, int64_t cap) {
  try {
    at::Generator gen = generator(device);
    std::lock_guard<std::mutex> lock(gen.mutex());
    at::Tensor state = gen.get_state().contiguous();
    int64_t n = state.numel() * state.element_size();
    if (buf != nullptr && n <= cap) std::memcpy(buf, state.data_ptr(), n);
    return n;
  } catch (...) {
    return -1;
  }
}

// Restores a state read by `torchkit_rng_state`; returns 0, or -1 on error.
int torchkit_set_rng_state(int device, const uint8_t *buf, int64_t n) {
  try {
    at::Tensor state = at::empty({n}, at::TensorOptions().dtype(at::kByte));
    std::memcpy(state.data_ptr(), buf, n);
    at::Generator gen = generator(device);
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(state);
    return 0;
  } catch (...) {
    return -1;
  }
}

// torch.randperm(n, generator=g) for g = torch.Generator() seeded with `seed`: how a
// shuffling DataLoader orders an epoch. Writes n indices to `out`; returns 0, or -1.
int torchkit_randperm_seeded(uint64_t seed, int64_t n, int64_t *out) {
  try {
    at::Generator gen = at::detail::createCPUGenerator(seed);
    at::Tensor p = at::randperm(n, gen, at::TensorOptions().dtype(at::kLong));
    std::memcpy(out, p.data_ptr<int64_t>(), n * sizeof(int64_t));
    return 0;
  } catch (...) {
    return -1;
  }
}
}
