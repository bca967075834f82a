// Kernels that find their operands' addresses in device memory, as a batched or grouped
// GEMM reads its pointer array. tests/progs/pointer_table.c. Compiled as a host shared
// object with tests/sim/cuda_host.h (see simkernel.h).

// p[i] = v for i < n
__global__ void table_fill(unsigned *p, unsigned long long n, unsigned v) {
    unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        p[i] = v;
}
SIM_KERNEL(table_fill)

// out[i] = the sum of table[g][i] over the table's count pointers: the only way this
// kernel reaches the buffers it reads is through the table
__global__ void sum_table(const unsigned *const *table, unsigned count, unsigned *out,
                          unsigned long long n) {
    unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n)
        return;
    unsigned sum = 0;
    for (unsigned g = 0; g < count; g++)
        sum += table[g][i];
    out[i] = sum;
}
SIM_KERNEL(sum_table)
