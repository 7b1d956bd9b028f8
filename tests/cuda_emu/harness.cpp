// Launches one instantiation of gpunet's CUDA kernel on the CPU (cuda_emu.h), with the arguments the
// Python launcher passed, for tests/cuda_emu/cupy_on_cpu.py. Every argument is converted to the type the
// kernel declares at its position, and refused if the launcher passed another type (a pointer of another
// element type, an int for a long long, ...), so the launch's ABI is checked as well as the kernel.
//
// Usage: harness DIR. DIR/launch.txt: the name expression; then "grid block shared_bytes"; then one line per
// argument: "buffer DTYPE" (its bytes in DIR/argI.bin, written back after the launch) or "DTYPE VALUE" for a
// scalar (floats in C99 hex notation). DTYPE is a NumPy dtype name.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "cuda_emu.h"
#include "sgd_epoch.cu"
#if __has_include("evaluate.cu")
#include "evaluate.cu"
#define GPUNET_EVALUATE(T, PS)                                                  \
  {                                                                             \
    "gpunet::evaluate<" #T ", " #PS ">",                                        \
        [](std::vector<Arg>& a, unsigned grid, unsigned block, size_t shared) { \
          launch(gpunet::evaluate<T, PS>, a, grid, block, shared);              \
        }                                                                       \
  }
#endif

struct Arg {
  std::string kind, dtype, value;  // kind: "buffer" or "scalar"
  std::vector<unsigned char> bytes;
};

template <typename V>
constexpr const char* dtype_of() {
  if constexpr (std::is_same_v<V, float>) return "float32";
  if constexpr (std::is_same_v<V, double>) return "float64";
  if constexpr (std::is_same_v<V, int>) return "int32";
  if constexpr (std::is_same_v<V, long long>) return "int64";
  if constexpr (std::is_same_v<V, unsigned char>) return "uint8";
  return "?";
}

template <typename A>
A convert(std::vector<Arg>& args, size_t position) {
  Arg& arg = args[position];
  auto refuse = [&](const std::string& want) {
    throw std::runtime_error("argument " + std::to_string(position) + ": the kernel takes " + want + ", got " +
                             arg.kind + " " + arg.dtype);
  };
  if constexpr (std::is_pointer_v<A>) {
    using V = std::remove_cv_t<std::remove_pointer_t<A>>;
    if (arg.kind != "buffer" || arg.dtype != dtype_of<V>()) refuse(std::string("a buffer of ") + dtype_of<V>());
    return arg.bytes.empty() ? nullptr : reinterpret_cast<A>(arg.bytes.data());
  } else {
    if (arg.kind != "scalar" || arg.dtype != dtype_of<A>()) refuse(std::string("a scalar ") + dtype_of<A>());
    if constexpr (std::is_floating_point_v<A>)
      return static_cast<A>(std::strtod(arg.value.c_str(), nullptr));
    else
      return static_cast<A>(std::stoll(arg.value));
  }
}

template <typename... Params, size_t... I>
void launch(void (*kernel)(Params...), std::vector<Arg>& args, std::index_sequence<I...>, unsigned grid,
            unsigned block, size_t shared) {
  std::tuple<Params...> values{convert<Params>(args, I)...};
  std::apply([&](auto... v) { emu::launch(kernel, grid, block, shared, v...); }, values);
}

template <typename... Params>
void launch(void (*kernel)(Params...), std::vector<Arg>& args, unsigned grid, unsigned block, size_t shared) {
  if (args.size() != sizeof...(Params))
    throw std::runtime_error("the kernel takes " + std::to_string(sizeof...(Params)) + " arguments, got " +
                             std::to_string(args.size()));
  launch(kernel, args, std::index_sequence_for<Params...>{}, grid, block, shared);
}

// The instantiations the launcher may name (gpunet/kernels/cuda.py INSTANTIATIONS).
#define GPUNET_KERNEL(T, PS, WS)                                                \
  {                                                                             \
    "gpunet::sgd_epoch<" #T ", " #PS ", " #WS ">",                              \
        [](std::vector<Arg>& a, unsigned grid, unsigned block, size_t shared) { \
          launch(gpunet::sgd_epoch<T, PS, WS>, a, grid, block, shared);         \
        }                                                                       \
  }

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: harness DIR\n");
    return 2;
  }
  const std::string dir = argv[1];
  std::ifstream spec(dir + "/launch.txt");
  std::string name, line;
  unsigned grid, block;
  size_t shared;
  std::getline(spec, name);
  spec >> grid >> block >> shared;
  std::getline(spec, line);
  std::vector<Arg> args;
  while (std::getline(spec, line)) {
    std::istringstream fields(line);
    Arg arg;
    fields >> arg.kind >> arg.dtype;
    if (arg.kind == "buffer") {
      std::ifstream f(dir + "/arg" + std::to_string(args.size()) + ".bin", std::ios::binary | std::ios::ate);
      arg.bytes.resize(f.tellg());
      f.seekg(0);
      f.read(reinterpret_cast<char*>(arg.bytes.data()), arg.bytes.size());
    } else {
      arg.value = arg.dtype;
      arg.dtype = arg.kind;
      arg.kind = "scalar";
    }
    args.push_back(std::move(arg));
  }
  const std::vector<std::pair<std::string, void (*)(std::vector<Arg>&, unsigned, unsigned, size_t)>> kernels = {
      GPUNET_KERNEL(float, true, true),   GPUNET_KERNEL(float, true, false),  GPUNET_KERNEL(float, false, true),
      GPUNET_KERNEL(float, false, false), GPUNET_KERNEL(double, true, true),  GPUNET_KERNEL(double, true, false),
      GPUNET_KERNEL(double, false, true), GPUNET_KERNEL(double, false, false),
#ifdef GPUNET_EVALUATE  // gpunet/kernels/cuda_score.py INSTANTIATIONS
      GPUNET_EVALUATE(float, true),       GPUNET_EVALUATE(float, false),      GPUNET_EVALUATE(double, true),
      GPUNET_EVALUATE(double, false),
#endif
  };
  try {
    bool found = false;
    for (auto& [n, run] : kernels)
      if (n == name) run(args, grid, block, shared), found = true;
    if (!found) throw std::runtime_error("no instantiation named " + name);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "harness: %s\n", e.what());
    return 1;
  }
  for (size_t i = 0; i < args.size(); ++i)
    if (args[i].kind == "buffer")
      std::ofstream(dir + "/arg" + std::to_string(i) + ".bin", std::ios::binary)
          .write(reinterpret_cast<const char*>(args[i].bytes.data()), args[i].bytes.size());
  return 0;
}
