// Test kernels for the emulator's warp intrinsics (tests/cuda_emu/test_warps.py): compiled by NVRTC for
// sm_90 and, through cuda_emu.h, by g++. One block; blockDim.x a multiple of 32.
namespace warps {

// Each warp's sum of x by a shuffle-down tree: lane 0 writes it to sums[warp].
extern "C" __global__ void warp_sum(const float* x, float* sums) {
  float s = x[threadIdx.x];
  for (int delta = 16; delta > 0; delta /= 2) s += __shfl_down_sync(0xffffffffu, s, delta);
  if (threadIdx.x % 32 == 0) sums[threadIdx.x / 32] = s;
}

// Each warp's sum by butterfly (xor) shuffles, so every lane holds it: everyone[t].
extern "C" __global__ void warp_sum_all(const float* x, float* everyone) {
  float s = x[threadIdx.x];
  for (int lane_mask = 16; lane_mask > 0; lane_mask /= 2) s += __shfl_xor_sync(0xffffffffu, s, lane_mask);
  everyone[threadIdx.x] = s;
}

// Where each flagged thread writes in a compacted list (an exclusive prefix count within its warp, by ballot
// and popc), and each warp's count; lane 0's value broadcast to the warp by __shfl_sync.
extern "C" __global__ void prefix_count(const int* flags, int* slot, int* totals, int* first) {
  const unsigned lane = threadIdx.x % 32;
  const unsigned ballot = __ballot_sync(0xffffffffu, flags[threadIdx.x] != 0);
  const unsigned below = (1u << lane) - 1;  // the lanes before this one
  slot[threadIdx.x] = flags[threadIdx.x] ? __popc(ballot & below) : -1;
  if (lane == 0) totals[threadIdx.x / 32] = __popc(ballot);
  first[threadIdx.x] = __shfl_sync(0xffffffffu, flags[threadIdx.x], 0);
}

}  // namespace warps
