// Just enough of CUDA's thread model for g++ to run gpunet/kernels/cuda/*.cu unchanged on the CPU:
// a block's threads are std::threads, __syncthreads() is a std::barrier, blocks run one after another,
// and `extern __shared__` arrays are one global buffer whose bytes past the launch's shared_mem are
// poisoned for AddressSanitizer and whose contents start as NaN (0xff bytes) so that reading shared
// memory nobody wrote shows in the results. atomicAdd on integers (evaluate.cu adds each block's count), as a
// relaxed atomic: blocks run one after another here. Warp intrinsics (__shfl_*_sync, __ballot_sync, __syncwarp)
// meet at a per-warp rendezvous with a slot per lane: every lane named in the mask must arrive with the same
// mask, a lane outside its own mask, a lane that has exited or waits at __syncthreads() instead ends the
// program with a message, and a shuffle from a lane outside the mask reads a poisoned value (NaN bits).
// Not modelled: divergence (__activemask() is the warp's lanes that have not exited), and two groups of
// one warp in different collectives at once (their masks disagree: the run ends).
#pragma once
#include <atomic>
#include <barrier>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <cmath>
#include <cstring>
#include <thread>
#include <stdexcept>
#include <vector>
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
};
inline thread_local dim3 threadIdx, blockIdx;
inline dim3 blockDim, gridDim;

#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
#define __shared__

namespace emu {
constexpr size_t max_shared = 256 * 1024;
struct Completed {
  void operator()() noexcept;
};
inline std::barrier<Completed>* block_barrier = nullptr;
}  // namespace emu

namespace emu {
constexpr unsigned max_threads = 1024;
constexpr unsigned full = 0xffffffffu;
// What each thread of the running block is doing, for the warp rendezvous to tell a lane that will never come.
enum State : int { running, at_barrier, exited };
inline std::atomic<int> state[max_threads];
inline std::atomic<unsigned long long> barrier_at[max_threads];  // the barrier phase a thread waits at
inline std::atomic<unsigned long long> barrier_done{0};          // phases completed
inline unsigned lane() { return threadIdx.x % 32; }

[[noreturn]] inline void fail(const char* what, unsigned lane, unsigned mask) {
  std::fprintf(stderr, "cuda_emu: warp %u lane %u: %s (mask 0x%08x)\n", threadIdx.x / 32, lane, what, mask);
  std::fflush(stderr);
  std::abort();
}

// One rendezvous per warp: lanes write their value in their slot; the last lane of the mask to arrive completes
// it, and each lane then reads the slots. A lane's result slot changes only at a rendezvous that lane is part of.
struct Warp {
  std::mutex mutex;
  std::condition_variable cv;
  unsigned mask = 0, arrived = 0;
  unsigned long long generation = 0;
  unsigned long long in[32], seen[32];
};
inline Warp warps[max_threads / 32];

// The lanes of this thread's warp that exist in the block.
inline unsigned warp_lanes() {
  const unsigned first = threadIdx.x / 32 * 32, n = blockDim.x - first < 32 ? blockDim.x - first : 32;
  return n == 32 ? full : (1u << n) - 1;
}

// A lane of `mask` that cannot arrive: it has exited, or it waits at a block barrier the waiting lanes never reach.
inline int lost_lane(unsigned mask, unsigned arrived) {
  const unsigned first = threadIdx.x / 32 * 32;
  for (unsigned l = 0; l < 32; ++l) {
    if (!(mask >> l & 1) || (arrived >> l & 1)) continue;
    const int s = state[first + l].load();
    if (s == exited || (s == at_barrier && barrier_at[first + l].load() == barrier_done.load())) return (int)l;
  }
  return -1;
}

// Every lane of `mask` gives `value`; returns the 32 slots as they were when the last of them arrived.
inline void rendezvous(unsigned mask, unsigned long long value, unsigned long long (&slots)[32]) {
  const unsigned me = lane();
  if (!(mask >> me & 1)) fail("calls a warp intrinsic with a mask that leaves it out", me, mask);
  if (mask & ~warp_lanes()) fail("names lanes beyond the block's threads in its mask", me, mask);
  Warp& w = warps[threadIdx.x / 32];
  std::unique_lock lock(w.mutex);
  if (w.arrived && w.mask != mask) fail("gives another mask than the lanes already waiting", me, w.mask);
  w.mask = mask;
  w.in[me] = value;
  w.arrived |= 1u << me;
  const unsigned long long generation = w.generation;
  if (w.arrived == mask) {
    std::memcpy(w.seen, w.in, sizeof w.in);
    w.arrived = 0;
    ++w.generation;
    w.cv.notify_all();
  } else {
    while (w.generation == generation) {
      if (w.cv.wait_for(lock, std::chrono::milliseconds(20)) == std::cv_status::timeout && w.generation == generation) {
        if (const int l = lost_lane(mask, w.arrived); l >= 0) fail("waits for a lane of its mask that never comes", (unsigned)l, mask);
      }
    }
  }
  std::memcpy(slots, w.seen, sizeof slots);
}

template <typename T>
unsigned long long bits(T v) {
  static_assert(sizeof(T) <= 8);
  unsigned long long b = 0;
  std::memcpy(&b, &v, sizeof v);
  return b;
}
template <typename T>
T from_bits(unsigned long long b) {
  T v;
  std::memcpy(&v, &b, sizeof v);
  return v;
}

// The value of lane `src` (within groups of `width` lanes), or poison where `src` is not in the mask.
template <typename T>
T shuffle(unsigned mask, T var, int src, int width) {
  unsigned long long slots[32];
  rendezvous(mask, bits(var), slots);
  const unsigned me = lane(), base = me / width * width, from = base + ((unsigned)src % width);
  if (!(mask >> from & 1)) return from_bits<T>(~0ull);  // NaN for floats: a read from a lane not taking part
  return from_bits<T>(slots[from]);
}
}  // namespace emu

inline void __syncthreads() {
  const unsigned t = threadIdx.x;
  emu::barrier_at[t] = emu::barrier_done.load();
  emu::state[t] = emu::at_barrier;
  emu::block_barrier->arrive_and_wait();
  emu::state[t] = emu::running;
}

template <typename T>
T __shfl_sync(unsigned mask, T var, int src, int width = 32) {
  return emu::shuffle(mask, var, src, width);
}
template <typename T>
T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = 32) {
  const unsigned me = emu::lane(), in_group = me % width;  // past the group's end: the lane's own value
  return emu::shuffle(mask, var, in_group + delta < (unsigned)width ? (int)(in_group + delta) : (int)in_group, width);
}
template <typename T>
T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = 32) {
  const unsigned in_group = emu::lane() % width;
  return emu::shuffle(mask, var, in_group >= delta ? (int)(in_group - delta) : (int)in_group, width);
}
template <typename T>
T __shfl_xor_sync(unsigned mask, T var, int lane_mask, int width = 32) {
  return emu::shuffle(mask, var, (int)((emu::lane() % width) ^ (unsigned)lane_mask), width);
}
inline unsigned __ballot_sync(unsigned mask, int predicate) {
  unsigned long long slots[32];
  emu::rendezvous(mask, predicate != 0, slots);
  unsigned ballot = 0;
  for (unsigned l = 0; l < 32; ++l) ballot |= (unsigned)((mask >> l & 1) && slots[l]) << l;
  return ballot;
}
inline void __syncwarp(unsigned mask = emu::full) {
  unsigned long long slots[32];
  emu::rendezvous(mask, 0, slots);
}
// No divergence is modelled: every lane of the warp that has not exited counts as active.
inline unsigned __activemask() {
  const unsigned first = threadIdx.x / 32 * 32;
  unsigned mask = 0;
  for (unsigned l = 0; l < 32; ++l) mask |= (unsigned)((emu::warp_lanes() >> l & 1) && emu::state[first + l] != emu::exited) << l;
  return mask;
}
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __ffs(int x) { return __builtin_ffs(x); }

inline int atomicAdd(int* address, int value) { return __atomic_fetch_add(address, value, __ATOMIC_RELAXED); }

// The one dynamic shared-memory array, by the name (and namespace) the kernels declare it with.
namespace gpunet {
alignas(16) inline unsigned char gpunet_shared[emu::max_shared];
}
using gpunet::gpunet_shared;

namespace emu {
inline void Completed::operator()() noexcept { barrier_done.fetch_add(1); }

// Run kernel(args...) on a grid of `blocks` blocks of `threads` threads with `shared` bytes of dynamic shared memory.
template <typename Kernel, typename... Args>
void launch(Kernel kernel, unsigned blocks, unsigned threads, size_t shared, Args... args) {
  if (shared > max_shared) throw std::runtime_error("shared memory beyond the emulator's buffer");
  gridDim.x = blocks;
  blockDim.x = threads;
  for (unsigned b = 0; b < blocks; ++b) {
#if defined(__SANITIZE_ADDRESS__)
    ASAN_UNPOISON_MEMORY_REGION(gpunet_shared, max_shared);
#endif
    std::memset(gpunet_shared, 0xff, max_shared);
#if defined(__SANITIZE_ADDRESS__)
    ASAN_POISON_MEMORY_REGION(gpunet_shared + shared, max_shared - shared);
#endif
    if (threads > max_threads) throw std::runtime_error("more threads than a block has");
    for (unsigned t = 0; t < threads; ++t) state[t] = running;
    std::barrier<Completed> barrier(threads);
    block_barrier = &barrier;
    std::vector<std::thread> pool;
    for (unsigned t = 0; t < threads; ++t)
      pool.emplace_back([&, t, b] {
        threadIdx.x = t;
        blockIdx.x = b;
        kernel(args...);
        state[t] = exited;
        barrier.arrive_and_drop();  // an exited thread no longer holds the others at __syncthreads()
      });
    for (auto& th : pool) th.join();
  }
}
}  // namespace emu
