// Runs gpunet's CUDA epoch kernel on the CPU through cuda_emu.h, on data written by tests/test_cuda_kernel.py.
// Usage: harness DIR. DIR/meta.txt holds "itemsize params_shared work_shared threads L N k n batch shared_bytes
// scratch_bytes lowest" then the L + 1 layer sizes; DIR/{params,x,y,order,eta}.bin the arrays (native
// byte order). The parameters after the launch go to DIR/params_out.bin.
#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <string>

#include "cuda_emu.h"
#include "sgd_epoch.cu"

template <typename V>
static std::vector<V> read(const std::string& path, size_t count) {
  std::vector<V> v(count);
  std::ifstream f(path, std::ios::binary);
  if (!f.read(reinterpret_cast<char*>(v.data()), count * sizeof(V))) throw std::runtime_error("short read: " + path);
  return v;
}

struct Meta {
  int itemsize, params_shared, work_shared, threads, layers, nets, k, n, batch;
  long long shared_bytes, scratch_bytes;
  double lowest;
  std::vector<int> sizes;
};

template <typename T, bool PS, bool WS>
static void run(const std::string& dir, const Meta& mt) {
  long long P = 0;
  for (int l = 1; l <= mt.layers; ++l) P += (long long)mt.sizes[l] * mt.sizes[l - 1] + mt.sizes[l];
  auto params = read<T>(dir + "/params.bin", P * mt.nets);
  auto x = read<T>(dir + "/x.bin", (size_t)mt.n * mt.sizes[0]);
  auto y = read<T>(dir + "/y.bin", (size_t)mt.n * mt.sizes[mt.layers]);
  auto order = read<int>(dir + "/order.bin", (size_t)mt.nets * mt.k);
  auto eta = read<double>(dir + "/eta.bin", mt.nets);
  // Exactly the global workspace the Python side allocates (none when it is in shared memory), filled with NaN.
  std::vector<unsigned char> scratch(mt.scratch_bytes * mt.nets, 0xff);
  emu::launch(gpunet::sgd_epoch<T, PS, WS>, mt.nets, mt.threads, mt.shared_bytes, params.data(), P,
              scratch.empty() ? nullptr : scratch.data(), mt.scratch_bytes, x.data(), y.data(), order.data(), mt.k,
              eta.data(), mt.sizes.data(), mt.layers, mt.batch, T(mt.lowest));
  std::ofstream(dir + "/params_out.bin", std::ios::binary)
      .write(reinterpret_cast<const char*>(params.data()), params.size() * sizeof(T));
}

template <typename T>
static void dispatch(const std::string& dir, const Meta& mt) {
  if (mt.params_shared && mt.work_shared) run<T, true, true>(dir, mt);
  if (mt.params_shared && !mt.work_shared) run<T, true, false>(dir, mt);
  if (!mt.params_shared && mt.work_shared) run<T, false, true>(dir, mt);
  if (!mt.params_shared && !mt.work_shared) run<T, false, false>(dir, mt);
}

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: harness DIR\n");
    return 2;
  }
  const std::string dir = argv[1];
  Meta mt;
  std::ifstream meta(dir + "/meta.txt");
  meta >> mt.itemsize >> mt.params_shared >> mt.work_shared >> mt.threads >> mt.layers >> mt.nets >> mt.k >> mt.n >>
      mt.batch >> mt.shared_bytes >> mt.scratch_bytes >> mt.lowest;
  mt.sizes.resize(mt.layers + 1);
  for (int& s : mt.sizes) meta >> s;
  if (!meta) throw std::runtime_error("bad meta.txt");
  if (mt.itemsize == 4)
    dispatch<float>(dir, mt);
  else
    dispatch<double>(dir, mt);
  return 0;
}
