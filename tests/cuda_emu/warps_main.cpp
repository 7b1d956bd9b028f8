// Runs one kernel of warps.cu (the copy beside this file: the test copies both) on the CPU through
// cuda_emu.h, for tests/cuda_emu/test_warps.py. Usage: warps KERNEL THREADS, reading THREADS integers from
// stdin and printing the kernel's outputs, one array per line.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "cuda_emu.h"
#include "warps.cu"

template <typename V>
void print(const std::vector<V>& values) {
  for (V v : values) std::printf("%.9g ", (double)v);
  std::printf("\n");
}

int main(int argc, char** argv) {
  if (argc != 3) return 2;
  const unsigned threads = (unsigned)std::atoi(argv[2]), warps_n = (threads + 31) / 32;
  std::vector<int> in(threads);
  for (int& v : in)
    if (std::scanf("%d", &v) != 1) return 2;
  if (!std::strcmp(argv[1], "warp_sum") || !std::strcmp(argv[1], "warp_sum_all")) {
    std::vector<float> x(in.begin(), in.end()), out(!std::strcmp(argv[1], "warp_sum") ? warps_n : threads);
    emu::launch(!std::strcmp(argv[1], "warp_sum") ? warps::warp_sum : warps::warp_sum_all, 1, threads, 0,
                (const float*)x.data(), out.data());
    print(out);
  } else if (!std::strcmp(argv[1], "prefix_count")) {
    std::vector<int> slot(threads), totals(warps_n), first(threads);
    emu::launch(warps::prefix_count, 1, threads, 0, (const int*)in.data(), slot.data(), totals.data(), first.data());
    print(slot), print(totals), print(first);
  } else {
    return 2;
  }
  return 0;
}
