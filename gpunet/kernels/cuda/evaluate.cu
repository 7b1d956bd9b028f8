// The book's `evaluate` for every member of a stack in one launch: for each member and test input, the
// most active output neuron of the feedforward a' = σ(w a + b) (eq. 22) is the network's answer; count
// the inputs where it is the label. Block b scores member b / tiles on the tile-th run of blockDim inputs,
// one input per thread, and adds its count to counts[member] (an integer sum: the order does not matter).
//
// Memory of one block (gpunet/kernels/cuda_score.py `plan` sizes the same regions, in this order):
//   acts        blockDim x H values of T, H the hidden units (layers 1..L-1): a^l of this thread's input,
//               stored [unit * blockDim + thread]; only its own thread reads them, so no barrier is needed.
//   parameters  P values when PARAMS_SHARED (else read where they are, in global memory): for each layer,
//               w^l (row-major, sizes[l] x sizes[l-1]) then b^l, as the training kernel packs them.
//   hits        blockDim ints: the block's count, summed in shared memory.
// The inputs come as columns, xt[pixel * n + input], so a warp's 32 threads read 32 neighbours at once.

#ifndef GPUNET_SCORE_THREADS
#define GPUNET_SCORE_THREADS 256  // threads per block the Python side launches (it passes the define)
#endif
#define GPUNET_SCORE_ROWS 32  // output neurons summed together per pass over a layer's inputs (in registers)

namespace gpunet {
namespace scoring {

__device__ inline float exp_of(float z) { return expf(z); }
__device__ inline double exp_of(double z) { return exp(z); }

// σ(z) = 1 / (1 + e^(-z)) (eq. 3), z clipped from below at `lowest` (gpunet.maths.clip_floor).
// Computed, not skipped before the argmax: outputs that round to 1 tie, as they do in the portable path.
template <typename T>
__device__ inline T sigmoid(T z, T lowest) {
  return T(1) / (T(1) + exp_of(-(z < lowest ? lowest : z)));
}

}  // namespace scoring

template <typename T, bool PARAMS_SHARED>
__global__ void __launch_bounds__(GPUNET_SCORE_THREADS) evaluate(
    const T* __restrict__ params,    // (N, param_count): every member's parameters
    long long param_count,           // P
    const T* __restrict__ xt,        // (sizes[0], n): the test inputs, as columns
    const int* __restrict__ labels,  // (n,): the right answers
    int n,                           // the number of test inputs
    const int* __restrict__ sizes,   // (L + 1,): the layer sizes
    int layers,                      // L, the number of weight layers
    T lowest,                        // where σ clips z (see sigmoid)
    int* __restrict__ counts) {      // (N,): zero before the launch; each block adds its correct answers
  extern __shared__ __align__(16) unsigned char gpunet_shared[];
  const int tid = threadIdx.x, nthreads = blockDim.x;
  const int tiles = (n + nthreads - 1) / nthreads;
  const int net = blockIdx.x / tiles, e = (blockIdx.x - net * tiles) * nthreads + tid;
  const int x = e < n ? e : n - 1;  // past the last input a thread scores the last one again, uncounted
  int hidden = 0;
  for (int l = 1; l < layers; ++l) hidden += sizes[l];

  T* const acts = reinterpret_cast<T*>(gpunet_shared);
  T* const shared_params = acts + (long long)hidden * nthreads;
  int* const hits = reinterpret_cast<int*>(shared_params + (PARAMS_SHARED ? param_count : 0));
  const T* p = params + (long long)net * param_count;
  if (PARAMS_SHARED) {
    for (long long t = tid; t < param_count; t += nthreads) shared_params[t] = p[t];
    p = shared_params;
    __syncthreads();
  }

  // Feedforward (eq. 22), layer by layer, GPUNET_SCORE_ROWS neurons at a time: one pass over the layer's
  // inputs feeds all their sums. Rows past the layer's last repeat its last row (no branch; not used).
  int answer = 0;  // argmax of the output layer: the first of equal maxima, a NaN before any number, as NumPy
  T best = T(0);
  const T* w = p;
  const T* a_prev = xt + x;  // a^(l-1) of this thread's input: a_prev[k * stride]
  long long stride = n;
  int offset = 0;  // where a^l starts in acts, in units
  for (int l = 1; l <= layers; ++l) {
    const int n_in = sizes[l - 1], n_out = sizes[l];
    const T* b = w + (long long)n_out * n_in;
    for (int j0 = 0; j0 < n_out; j0 += GPUNET_SCORE_ROWS) {
      int at[GPUNET_SCORE_ROWS];  // where row j0 + r of w^l starts
      T z[GPUNET_SCORE_ROWS];
#pragma unroll
      for (int r = 0; r < GPUNET_SCORE_ROWS; ++r) {
        at[r] = (j0 + r < n_out ? j0 + r : n_out - 1) * n_in;
        z[r] = T(0);
      }
      for (int k = 0; k < n_in; ++k) {
        const T a = a_prev[k * stride];
#pragma unroll
        for (int r = 0; r < GPUNET_SCORE_ROWS; ++r) z[r] += w[at[r] + k] * a;
      }
#pragma unroll
      for (int r = 0; r < GPUNET_SCORE_ROWS; ++r) {
        const int j = j0 + r;
        if (j >= n_out) break;
        const T av = scoring::sigmoid(z[r] + b[j], lowest);
        if (l < layers) {
          acts[(long long)(offset + j) * nthreads + tid] = av;
        } else if (j == 0 || (best == best && (av > best || av != av))) {
          best = av;
          answer = j;
        }
      }
    }
    a_prev = acts + (long long)offset * nthreads + tid;
    stride = nthreads;
    offset += n_out;
    w = b + n_out;
  }

  // The block's count: a tree of sums in shared memory, then one atomic add per block.
  hits[tid] = e < n && answer == labels[e];
  __syncthreads();
  for (int half = 1; half < nthreads; half *= 2) {
    if (tid % (2 * half) == 0 && tid + half < nthreads) hits[tid] += hits[tid + half];
    __syncthreads();
  }
  if (tid == 0) atomicAdd(counts + net, hits[0]);
}

}  // namespace gpunet
