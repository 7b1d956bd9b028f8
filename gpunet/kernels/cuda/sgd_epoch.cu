// Whole epochs of the book's mini-batch SGD (chapters 1 and 3) in one launch: block b trains member b of
// a stack of N networks on its own order of examples with its own eta and L2 decay, so one network and a
// sweep of hundreds are the same launch. Same maths and order as gpunet/maths.py `sgd_step`: per
// mini-batch, feedforward (eq. 22), BP1-BP2 from the parameters before the update, then BP3-BP4 and one
// update w -> (1 - eta lmbda/n) w - (eta/m) dC/dw, b -= (eta/m) dC/db (eqs. 93, 20-21), m that
// mini-batch's size. The cost is an argument: only BP1 depends on it (eq. 66).
//
// The first layer's update touches only the active columns; to keep L2's decay sparse there, its weights
// are s v (Bottou's scale trick, SGD Tricks, 2012, as gpunet/kernels/_numba_epoch.py): the decay
// multiplies the number s, and v is multiplied back by s (a dense pass) only when s gets small and at the
// end of the call's last launch (s is carried between its launches). Equal to the dense update within rounding.
//
// Memory of one member (gpunet/kernels/cuda.py `layout` sizes the same regions, in this order):
//   partial     blockDim values of T: split sums of the feedforward, always in shared memory.
//   parameters  P values: for each layer l = 1..L, w^l (sizes[l] rows x sizes[l-1] columns, row-major)
//               then b^l (sizes[l]); in shared memory when PARAMS_SHARED, else updated in place in global
//               memory (small enough networks stay in L2).
//   workspace   T: xa (sizes[0] x batch), a^l and delta^l for l = 1..L (sizes[l] x batch each);
//               int: active (sizes[0]), rows (batch); in shared memory when WORK_SHARED, else in `scratch`.
//   block ints  counts (blockDim), group_sums (32), n_active (1): always in shared memory.
// Matrices over the mini-batch are stored [unit * m + example], m = this mini-batch's size.
//
// Only shared-memory reductions and __syncthreads() are used (no warp intrinsics, no atomics), so every
// result is deterministic and the CPU emulation in tests/cuda_emu runs this file unchanged.

#ifndef GPUNET_THREADS
#define GPUNET_THREADS 1024  // the most threads per block the Python side launches (it passes -DGPUNET_THREADS)
#endif

namespace gpunet {

constexpr double FOLD = 1.0 / (1 << 20);  // |s| below this: s is multiplied into v (gpunet/kernels/_numba_epoch.py)

__device__ inline float exp_of(float z) { return expf(z); }  // accurate exp, not __expf
__device__ inline double exp_of(double z) { return exp(z); }

// σ(z) = 1 / (1 + e^(-z)) (eq. 3), z clipped from below at `lowest` (gpunet.maths.clip_floor).
template <typename T>
__device__ inline T sigmoid(T z, T lowest) {
  return T(1) / (T(1) + exp_of(-(z < lowest ? lowest : z)));
}

// Does some example of the mini-batch (rows[0..m)) have a non-zero input at column c? All m loads are
// issued before the answer is needed (no early exit), so they wait on memory together.
template <typename T>
__device__ inline bool column_is_active(const T* __restrict__ x, const int* rows, int m, int n0, int c) {
  bool any = false;
  for (int e = 0; e < m; ++e) any |= x[(long long)rows[e] * n0 + c] != T(0);
  return any;
}

// Σ_q w[col(q)] a[q * m + e] for q in [q0, q1), where col(q) = cols[q], or q when cols is null.
template <typename T>
__device__ inline T dot(const T* w, const int* cols, const T* a, int m, int e, int q0, int q1) {
  T s = T(0);
  if (cols) {
    for (int q = q0; q < q1; ++q) s += w[cols[q]] * a[q * m + e];
  } else {
    for (int q = q0; q < q1; ++q) s += w[q] * a[q * m + e];
  }
  return s;
}

// A hint to bring global memory into L2 ahead of use. Off the GPU (the CPU emulation) a one-byte read
// instead, so that AddressSanitizer checks the address.
__device__ inline void prefetch_l2(const void* p) {
#ifdef __CUDA_ARCH__
  asm volatile("prefetch.global.L2 [%0];" ::"l"(__cvta_generic_to_global(p)));
#else
  (void)*static_cast<const volatile unsigned char*>(p);
#endif
}

template <typename T, bool PARAMS_SHARED, bool WORK_SHARED>
__global__ void __launch_bounds__(GPUNET_THREADS, 1) sgd_epoch(
    T* __restrict__ params,                // (N, param_count): every member's parameters, updated in place
    long long param_count,                 // P
    unsigned char* __restrict__ scratch,   // (N, scratch_bytes): workspaces, used when !WORK_SHARED
    long long scratch_bytes,
    const T* __restrict__ x,               // (n, sizes[0]): the training inputs, as rows
    const T* __restrict__ y,               // (n, sizes[L]): one-hot targets, as rows
    const int* __restrict__ order,         // (N, k): the examples of each member, in order
    int k,
    const double* __restrict__ eta,        // (N,): each member's learning rate
    const double* __restrict__ decay,      // (N,): each member's L2 factor 1 - eta lmbda / n (eq. 93)
    double* __restrict__ first_scale,      // (N,): each member's s (the scale trick) at the start, kept unless last
    const int* __restrict__ sizes,         // (L + 1,): the layer sizes
    int layers,                            // L, the number of weight layers
    int batch,                             // the mini-batch size; the last mini-batch may be shorter
    T lowest,                              // where σ clips z (see sigmoid)
    int cross_entropy,                     // 1: the cross-entropy cost (eq. 63), 0: the quadratic (eq. 6)
    int last) {                            // 1: the call's last launch, which ends with w = s v again
  extern __shared__ __align__(16) unsigned char gpunet_shared[];
  const int tid = threadIdx.x, nthreads = blockDim.x, net = blockIdx.x;
  const int n0 = sizes[0], n_out = sizes[layers];
  int units = 0;  // the neurons of layers 1..L
  for (int l = 1; l <= layers; ++l) units += sizes[l];

  // Carve this member's regions (see the header); the Python side sized them the same way.
  T* const partial = reinterpret_cast<T*>(gpunet_shared);
  unsigned char* free_shared = gpunet_shared + nthreads * sizeof(T);
  T* const global_params = params + (long long)net * param_count;
  T* p = global_params;
  if (PARAMS_SHARED) {
    p = reinterpret_cast<T*>(free_shared);
    free_shared += param_count * sizeof(T);
  }
  const long long work_bytes = (long long)sizeof(T) * batch * (n0 + 2LL * units) + sizeof(int) * (n0 + batch);
  unsigned char* work = scratch + (long long)net * scratch_bytes;
  if (WORK_SHARED) {
    work = free_shared;
    free_shared += work_bytes;
  }
  T* const xa = reinterpret_cast<T*>(work);          // xa[q * m + e]: input active[q] of example e
  T* const acts = xa + (long long)n0 * batch;         // a^l, l = 1..L
  T* const deltas = acts + (long long)units * batch;  // δ^l, l = 1..L
  int* const active = reinterpret_cast<int*>(deltas + (long long)units * batch);  // non-zero input columns
  int* const rows = active + n0;                      // the examples of this mini-batch
  int* const counts = reinterpret_cast<int*>(free_shared);  // active columns per thread
  int* const group_sums = counts + nthreads;                // ... per group of 32 threads
  int* const n_active = group_sums + 32;

  // Each thread looks after a contiguous run of input columns, so the active ones come out ascending.
  const int chunk = (n0 + nthreads - 1) / nthreads;
  const int c_begin = tid * chunk < n0 ? tid * chunk : n0;
  const int c_end = c_begin + chunk < n0 ? c_begin + chunk : n0;
  const int* const my_order = order + (long long)net * k;
  double s = first_scale[net];  // the first layer's w = s v (the scale trick); v is what p holds

  for (long long t = tid; PARAMS_SHARED && t < param_count; t += nthreads) p[t] = global_params[t];
  {
    int count = 0;  // the first mini-batch's active columns among this thread's (later ones: phase E)
    for (int c = c_begin; c < c_end; ++c) count += column_is_active(x, my_order, k < batch ? k : batch, n0, c);
    counts[tid] = count;
  }
  __syncthreads();

  for (int start = 0; start < k; start += batch) {
    const int m = k - start < batch ? k - start : batch;
    const int next = start + batch, m_next = k - next < batch ? k - next : batch;  // m_next <= 0: none
    const T scale = T(eta[net] / m);  // eta / m in double, then rounded, as the portable path's Python float
    const T first_scale = T(s);

    // A. The active input columns are those where some example has a non-zero pixel (about 80% of
    // MNIST's pixels are 0): the first layer's products skip the others exactly, as the CPU path does.
    // Sum the per-thread counts per group of 32 (a two-level prefix sum, in shared memory); take this
    // mini-batch's example indices; ask for the next mini-batch's inputs to be brought into L2.
    if (tid * 32 < nthreads) {
      int s = 0;
      for (int i = tid * 32; i < tid * 32 + 32 && i < nthreads; ++i) s += counts[i];
      group_sums[tid] = s;
    }
    for (int e = tid; e < m; e += nthreads) rows[e] = my_order[start + e];
    {
      const int lines = (n0 * (int)sizeof(T) + 127) / 128;  // 128-byte lines per input row
      for (int i = tid; i < m_next * lines; i += nthreads) {
        const int e = i / lines;
        prefetch_l2(x + (long long)my_order[next + e] * n0 + (i - e * lines) * (128 / (int)sizeof(T)));
      }
    }
    __syncthreads();

    // B. Each thread writes its active columns, and the mini-batch's inputs there, from its first slot on.
    {
      int q = 0;  // exclusive prefix sum of the counts
      for (int g = 0; g < tid / 32; ++g) q += group_sums[g];
      for (int i = tid / 32 * 32; i < tid; ++i) q += counts[i];
      for (int c = c_begin; c < c_end; ++c) {
        if (!column_is_active(x, rows, m, n0, c)) continue;
        active[q] = c;
        for (int e = 0; e < m; ++e) xa[q * m + e] = x[(long long)rows[e] * n0 + c];
        ++q;
      }
      if (tid == nthreads - 1) *n_active = q;
    }
    __syncthreads();
    const int na = *n_active;

    // C. Feedforward (eq. 22): a^l = σ(w^l a^(l-1) + b^l), the first layer over the active columns only.
    // Where a layer has fewer sums than threads, each sum is split in `parts` summed in `partial` first.
    // The first layer's z = s (v x) + b. At the output layer also BP1: δ^L = (a^L - y) ⊙ σ'(z^L) with
    // σ'(z) = a (1 - a) for the quadratic cost; δ^L = a^L - y for the cross-entropy (eq. 66).
    {
      const T* w = p;  // w^l, then b^l follows it
      const T* a_prev = xa;
      T* a = acts;
      for (int l = 1; l <= layers; ++l) {
        const int n_in = sizes[l - 1], n = sizes[l], outputs = n * m;
        const T* b = w + n * n_in;
        const int* cols = l == 1 ? active : nullptr;
        const int terms = l == 1 ? na : n_in;
        const int parts = outputs < nthreads ? nthreads / outputs : 1;  // parts * outputs <= nthreads
        if (parts > 1) {  // the same for every thread of the block, so the barrier is reached by all
          if (tid < parts * outputs) {
            const int r = tid / outputs, o = tid - r * outputs, j = o / m, e = o - j * m;
            const int q0 = (int)((long long)terms * r / parts), q1 = (int)((long long)terms * (r + 1) / parts);
            partial[tid] = dot(w + j * n_in, cols, a_prev, m, e, q0, q1);
          }
          __syncthreads();
        }
        for (int t = tid; t < outputs; t += nthreads) {
          const int j = t / m, e = t - j * m;
          T z = T(0);
          if (parts > 1) {
            for (int r = 0; r < parts; ++r) z += partial[r * outputs + t];
          } else {
            z = dot(w + j * n_in, cols, a_prev, m, e, 0, terms);
          }
          if (l == 1) z *= first_scale;
          const T av = sigmoid(z + b[j], lowest);
          a[t] = av;
          if (l == layers) {
            const T error = av - y[(long long)rows[e] * n_out + j];
            deltas[(units - n_out) * m + t] = cross_entropy ? error : error * (av * (T(1) - av));
          }
        }
        __syncthreads();
        w = b + n;
        a_prev = a;
        a += outputs;
      }
    }

    // D. BP2: δ^l = ((w^(l+1))^T δ^(l+1)) ⊙ σ'(z^l), from the output layer back, all from the
    // parameters before this mini-batch's update.
    {
      const T* w_next = p + param_count - n_out - n_out * sizes[layers - 1];  // w^L
      int offset = units - n_out;  // of δ^L in units: δ^l starts at (units of layers 1..l-1) * m
      for (int l = layers - 1; l >= 1; --l) {
        const int n = sizes[l], n_next = sizes[l + 1];
        const T* d_next = deltas + offset * m;
        offset -= n;
        const T* a = acts + offset * m;
        T* d = deltas + offset * m;
        for (int t = tid; t < n * m; t += nthreads) {
          const int i = t / m, e = t - i * m;
          T s = T(0);
          for (int j = 0; j < n_next; ++j) s += w_next[j * n + i] * d_next[j * m + e];
          d[t] = s * (a[t] * (T(1) - a[t]));
        }
        __syncthreads();
        w_next -= n + n * sizes[l - 1];  // w^l
      }
    }

    // E. BP3: ∂C/∂b^l = Σ_x δ^l, BP4: ∂C/∂w^l_jk = Σ_x a^(l-1)_k δ^l_j; then w -> (1 - ηλ/n) w -
    // (eta/m) ∂C/∂w and b -= (eta/m) ∂C/∂b (eqs. 93, 20-21). Layers touch disjoint parameters and only
    // read a and δ, so they share one phase. The first layer updates only its active columns (the others'
    // gradients are 0), its decay on s alone: v -= (eta/m)/s ∂C/∂w. Nobody reads v in this phase until
    // then, so a fold of a small s into v needs one barrier only (s is the same in every thread).
    // Then each thread counts its active columns of the next mini-batch (its inputs are in L2 by now).
    const double my_decay = decay[net];  // read where used: fewer registers live across the loop
    s *= my_decay;
    if (s < FOLD && s > -FOLD) {
      for (long long t = tid; t < (long long)sizes[1] * n0; t += nthreads) p[t] *= s;
      s = 1.0;
      __syncthreads();
    }
    {
      const T first_step = T(eta[net] / m / s), decay_t = T(my_decay);  // decay_t rounded as the portable path's
      T* w = p;
      const T* a_prev = xa;
      int offset = 0;
      for (int l = 1; l <= layers; ++l) {
        const int n_in = sizes[l - 1], n = sizes[l];
        T* b = w + n * n_in;
        const T* d = deltas + offset * m;
        const int cols = l == 1 ? na : n_in;
        for (int t = tid; t < n * cols; t += nthreads) {
          const int j = t / cols, i = t - j * cols;
          T g = T(0);
          for (int e = 0; e < m; ++e) g += d[j * m + e] * a_prev[i * m + e];
          if (l == 1) {
            w[j * n_in + active[i]] -= first_step * g;
          } else {
            T& wi = w[j * n_in + i];
            wi = (my_decay == 1.0 ? wi : decay_t * wi) - scale * g;  // without L2: chapter 1's update, bit for bit
          }
        }
        for (int j = tid; j < n; j += nthreads) {
          T g = T(0);
          for (int e = 0; e < m; ++e) g += d[j * m + e];
          b[j] -= scale * g;
        }
        a_prev = acts + offset * m;
        offset += n;
        w = b + n;
      }
      int count = 0;
      for (int c = c_begin; c < c_end && m_next > 0; ++c) count += column_is_active(x, my_order + next, m_next, n0, c);
      counts[tid] = count;
    }
    __syncthreads();
  }
  // w = s v again, after the loop's last barrier; each thread folds the values it then copies out.
  for (long long t = tid; last && s != 1.0 && t < (long long)sizes[1] * n0; t += nthreads) p[t] *= s;
  if (!last && tid == 0) first_scale[net] = s;  // every thread read it before the loop's first barrier
  for (long long t = tid; PARAMS_SHARED && t < param_count; t += nthreads) global_params[t] = p[t];
}

}  // namespace gpunet
