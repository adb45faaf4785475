/* The tutorial's sigmoid networks between their matmuls, one pass over each activation (aekit/training/fused.py).
 *
 *     bias_sigmoid:           a[i, j] <- sigmoid(a[i, j] + b[j])        (a = x @ W^T from the matmul, in place)
 *     sigmoid_backward_bias:  g[i, j] <- g[i, j] * s[i, j] * (1 - s[i, j]),   db[j] = sum over i of g[i, j]
 *     sigmoid_mse_forward:    the output layer: y = sigmoid(z + b), the sum of (y - t)^2, and the gradient on z
 *                             with its column sums
 *     softmax_cross_entropy:  a linear head's loss, and the gradient on its logits with its column sums
 *     mlp_forward, mlp_backward:  a whole pass of the network, these between its matmuls, in one call (the
 *                             matmuls by the sgemm_ that PyTorch's torch.mm calls, passed in as a pointer)
 *
 * PyTorch makes each of these two or three kernels (addmm's bias copy, sigmoid; sigmoid_backward and the sum
 * for the bias gradient; mse_loss, mse_loss_backward, sigmoid_backward, sum). The exponential is Cephes' expf (a
 * degree-5 polynomial after range reduction), written so that the compiler vectorises it.
 * Row-major (rows, cols) float32 arrays throughout. */
#include <stdint.h>
#include <math.h>
#include <string.h>

static inline float exp_neg(float x) { /* exp(-x), clamped to float's normal range */
    x = -x;
    x = x > 88.3762626647949f ? 88.3762626647949f : x;
    x = x < -87.3365447504f ? -87.3365447504f : x;
    const float magic = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    float t = x * 1.44269504088896341f + magic;
    float n = t - magic;
    union { float f; int32_t i; } bits = {t};
    int32_t k = bits.i - 0x4B400000; /* the integer n */
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500E-4f;
    p = p * r + 1.3981999507E-3f;
    p = p * r + 8.3334519073E-3f;
    p = p * r + 4.1665795894E-2f;
    p = p * r + 1.6666665459E-1f;
    p = p * r + 5.0000001201E-1f;
    p = p * r * r + r + 1.0f;
    union { uint32_t i; float f; } scale = {(uint32_t)(k + 127) << 23}; /* unsigned: NaN input gives garbage k */
    return p * scale.f;
}

#define THREADED(n) if ((n) > 16384)

void bias_sigmoid(int64_t rows, int64_t cols, float *restrict a, const float *restrict b) {
#pragma omp parallel for schedule(static) THREADED(rows * cols)
    for (int64_t i = 0; i < rows; i++) {
        float *restrict row = a + i * cols;
#pragma omp simd
        for (int64_t j = 0; j < cols; j++) row[j] = 1.0f / (1.0f + exp_neg(row[j] + b[j]));
    }
}

/* Column sums of a (rows, cols) array, kept per fixed chunk of rows and added up in chunk order: the threads
 * split the rows, and the result does not depend on how many threads there are. */
#define CHUNKS 8 /* also in aekit/training/fused.py: the caller sizes `partial` as CHUNKS * cols */

static void sum_chunks(int64_t cols, const float *restrict partial, float *restrict db) {
    for (int64_t j = 0; j < cols; j++) db[j] = 0.0f;
    for (int c = 0; c < CHUNKS; c++)
#pragma omp simd
        for (int64_t j = 0; j < cols; j++) db[j] += partial[c * cols + j];
}

void sigmoid_backward_bias(int64_t rows, int64_t cols, float *restrict g, const float *restrict s,
                           float *restrict db, float *restrict partial) {
#pragma omp parallel for schedule(static) THREADED(rows * cols)
    for (int c = 0; c < CHUNKS; c++) {
        float *restrict acc = partial + c * cols;
        for (int64_t j = 0; j < cols; j++) acc[j] = 0.0f;
        for (int64_t i = rows * c / CHUNKS; i < rows * (c + 1) / CHUNKS; i++) {
            float *restrict gr = g + i * cols;
            const float *restrict sr = s + i * cols;
#pragma omp simd
            for (int64_t j = 0; j < cols; j++) {
                const float v = gr[j] * sr[j] * (1.0f - sr[j]);
                gr[j] = v;
                acc[j] += v;
            }
        }
    }
    sum_chunks(cols, partial, db);
}

/* The last layer and the loss in one pass: y = sigmoid(z + b) and the sum of (y - t)^2, returned; where g is
 * not NULL, also g = scale * (y - t) * y * (1 - y), the gradient on z for scale = 2 / n (a mean), and its
 * column sums in db. z is left as it was: y is not needed after. */
double sigmoid_mse_forward(int64_t rows, int64_t cols, const float *restrict z, const float *restrict b,
                           const float *restrict t, float scale, float *restrict g, float *restrict db,
                           float *restrict partial) {
    double totals[CHUNKS];
#pragma omp parallel for schedule(static) THREADED(rows * cols)
    for (int c = 0; c < CHUNKS; c++) {
        double total = 0.0;
        float *restrict acc = g ? partial + c * cols : NULL;
        if (acc)
            for (int64_t j = 0; j < cols; j++) acc[j] = 0.0f;
        for (int64_t i = rows * c / CHUNKS; i < rows * (c + 1) / CHUNKS; i++) {
            const float *restrict zr = z + i * cols, *restrict tr = t + i * cols;
            float row_total = 0.0f;
            if (acc) {
                float *restrict gr = g + i * cols;
#pragma omp simd reduction(+ : row_total)
                for (int64_t j = 0; j < cols; j++) {
                    const float y = 1.0f / (1.0f + exp_neg(zr[j] + b[j])), d = y - tr[j], v = scale * d * y * (1.0f - y);
                    row_total += d * d;
                    gr[j] = v;
                    acc[j] += v;
                }
            } else {
#pragma omp simd reduction(+ : row_total)
                for (int64_t j = 0; j < cols; j++) {
                    const float d = 1.0f / (1.0f + exp_neg(zr[j] + b[j])) - tr[j];
                    row_total += d * d;
                }
            }
            total += (double)row_total;
        }
        totals[c] = total;
    }
    if (g) sum_chunks(cols, partial, db);
    double total = 0.0;
    for (int c = 0; c < CHUNKS; c++) total += totals[c];
    return total;
}

/* The softmax cross-entropy of (rows, k) logits z against labels, summed over the rows and returned; where g is
 * not NULL, also g = scale * (softmax(z) - one_hot(label)), the gradient on z for scale = 1 / rows (a mean), and
 * its column sums in db. A label outside [0, k) returns -1 - (its row), having written nothing of g. */
double softmax_cross_entropy(int64_t rows, int64_t k, const float *restrict z, const int64_t *restrict labels,
                             float scale, float *restrict g, float *restrict db) {
    for (int64_t i = 0; i < rows; i++)
        if (labels[i] < 0 || labels[i] >= k) return -1.0 - (double)i;
    double total = 0.0;
    if (g)
        for (int64_t j = 0; j < k; j++) db[j] = 0.0f;
    for (int64_t i = 0; i < rows; i++) {
        const float *zr = z + i * k;
        float top = zr[0];
        for (int64_t j = 1; j < k; j++) top = zr[j] > top ? zr[j] : top;
        double sum = 0.0;
        for (int64_t j = 0; j < k; j++) sum += (double)expf(zr[j] - top);
        const double log_sum = log(sum);
        total += log_sum - (double)(zr[labels[i]] - top);
        if (g) {
            float *gr = g + i * k;
            for (int64_t j = 0; j < k; j++) {
                const float v = scale * ((float)((double)expf(zr[j] - top) / sum) - (j == labels[i] ? 1.0f : 0.0f));
                gr[j] = v;
                db[j] += v;
            }
        }
    }
    return total;
}

/* Whole passes of the network: its matmuls by the BLAS ``sgemm_`` that PyTorch itself calls (passed in as a
 * pointer, Fortran interface, column-major), and the passes above between them, in one call from Python instead
 * of one PyTorch op or C call per matmul and per layer. Each weight w[i] is (widths[i + 1], widths[i]) row-major,
 * as nn.Linear keeps it; each activation and gradient buffer is (rows, widths[i + 1]). */
typedef void (*sgemm_fn)(const char *transa, const char *transb, const int *m, const int *n, const int *k,
                         const float *alpha, const float *a, const int *lda, const float *b, const int *ldb,
                         const float *beta, float *c, const int *ldc);

/* Row-major c (m, n) = a (m, k) @ b^T, with b (n, k) row-major; c += with beta = 1. */
static void mm_abt(sgemm_fn gemm, int m, int n, int k, const float *a, const float *b, float beta, float *c) {
    const float one = 1.0f;
    gemm("T", "N", &n, &m, &k, &one, b, &k, a, &k, &beta, c, &n);
}

/* Row-major c (m, n) = a (m, k) @ b, with b (k, n) row-major. */
static void mm_ab(sgemm_fn gemm, int m, int n, int k, const float *a, const float *b, float *c) {
    const float one = 1.0f, zero = 0.0f;
    gemm("N", "N", &n, &m, &k, &one, b, &n, a, &k, &zero, c, &n);
}

/* Row-major c (m, n) = a^T @ b, with a (k, m) and b (k, n) row-major. */
static void mm_atb(sgemm_fn gemm, int m, int n, int k, const float *a, const float *b, float *c) {
    const float one = 1.0f, zero = 0.0f;
    gemm("N", "T", &n, &m, &k, &one, b, &n, a, &m, &zero, c, &n);
}

/* Forward pass and loss of n layers (see _SigmoidMLP in fused.py): hidden layers sigmoid(a @ w^T + b) into
 * acts[i]; the last into acts[n - 1], scored by sigmoid_mse_forward against the images `target` (loss 0) or, as
 * logits b + a @ w^T, by softmax_cross_entropy against the int64 labels `target` (loss 1). Returns that function's
 * value (a sum over the batch; for loss 1, -1 - row of a bad label). top, db and scratch as there (top NULL: no
 * gradient wanted). */
double mlp_forward(int n, int64_t rows, const int64_t *widths, const float *x, const float *const *w,
                   const float *const *b, float *const *acts, int loss, const void *target, float scale,
                   float *top, float *db, float *scratch, sgemm_fn gemm) {
    const float *a = x;
    for (int i = 0; i < n - 1; i++) {
        mm_abt(gemm, (int)rows, (int)widths[i + 1], (int)widths[i], a, w[i], 0.0f, acts[i]);
        bias_sigmoid(rows, widths[i + 1], acts[i], b[i]);
        a = acts[i];
    }
    const int64_t out = widths[n];
    float *z = acts[n - 1];
    if (loss == 0) {
        mm_abt(gemm, (int)rows, (int)out, (int)widths[n - 1], a, w[n - 1], 0.0f, z);
        return sigmoid_mse_forward(rows, out, z, b[n - 1], (const float *)target, scale, top, db, scratch);
    }
    for (int64_t i = 0; i < rows; i++) memcpy(z + i * out, b[n - 1], (size_t)out * sizeof(float)); /* as addmm */
    mm_abt(gemm, (int)rows, (int)out, (int)widths[n - 1], a, w[n - 1], 1.0f, z);
    return softmax_cross_entropy(rows, out, z, (const int64_t *)target, scale, top, db);
}

/* Backward pass of mlp_forward when every weight and bias learns and the input does not: from the gradient on
 * the last layer's pre-activation (grads[n - 1], made by the forward pass), each layer's weight gradient into
 * dw[i] and, below the top, the gradient on each hidden pre-activation into grads[i] and its bias gradient into
 * db[i] (the top bias gradient was made by the forward pass too). */
void mlp_backward(int n, int64_t rows, const int64_t *widths, const float *x, const float *const *w,
                  const float *const *acts, float *const *grads, float *const *dw, float *const *db,
                  float *scratch, sgemm_fn gemm) {
    for (int i = n - 1; i >= 0; i--) {
        const float *g = grads[i];
        mm_atb(gemm, (int)widths[i + 1], (int)widths[i], (int)rows, g, i ? acts[i - 1] : x, dw[i]);
        if (i > 0) {
            mm_ab(gemm, (int)rows, (int)widths[i], (int)widths[i + 1], g, w[i], grads[i - 1]);
            sigmoid_backward_bias(rows, widths[i], grads[i - 1], acts[i - 1], db[i - 1], scratch);
        }
    }
}
