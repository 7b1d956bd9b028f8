// Just enough of CUDA's thread model for g++ to run gpunet/kernels/cuda/*.cu unchanged on the CPU:
// a block's threads are std::threads, __syncthreads() is a std::barrier, blocks run one after another,
// and `extern __shared__` arrays are one global buffer whose bytes past the launch's shared_mem are
// poisoned for AddressSanitizer and whose contents start as NaN (0xff bytes) so that reading shared
// memory nobody wrote shows in the results. No warp intrinsics: the kernels do not use them. atomicAdd on
// integers (evaluate.cu adds each block's count), as a relaxed atomic: blocks run one after another here.
#pragma once
#include <barrier>
#include <cmath>
#include <cstring>
#include <thread>
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
inline std::barrier<>* block_barrier = nullptr;
}  // namespace emu

inline void __syncthreads() { emu::block_barrier->arrive_and_wait(); }

inline int atomicAdd(int* address, int value) { return __atomic_fetch_add(address, value, __ATOMIC_RELAXED); }

// The one dynamic shared-memory array, by the name (and namespace) the kernels declare it with.
namespace gpunet {
alignas(16) inline unsigned char gpunet_shared[emu::max_shared];
}
using gpunet::gpunet_shared;

namespace emu {
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
    std::barrier<> barrier(threads);
    block_barrier = &barrier;
    std::vector<std::thread> pool;
    for (unsigned t = 0; t < threads; ++t)
      pool.emplace_back([&, t, b] {
        threadIdx.x = t;
        blockIdx.x = b;
        kernel(args...);
        barrier.arrive_and_drop();  // an exited thread no longer holds the others at __syncthreads()
      });
    for (auto& th : pool) th.join();
  }
}
}  // namespace emu
