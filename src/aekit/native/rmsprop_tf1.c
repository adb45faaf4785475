/* TF1's RMSProp update (training_ops.cc: ApplyRMSProp) in one pass over each parameter:
 *
 *     ms  <- decay * ms + (1 - decay) * g^2
 *     mom <- momentum * mom + lr * g / sqrt(ms + eps)      (without momentum: var -= lr * g / sqrt(ms + eps))
 *     var <- var - mom
 *
 * PyTorch's foreach ops make five passes over the weights for the same update; this reads each of var, g and ms
 * (and mom) once and writes var and ms (and mom) once. Where it is built with OpenMP (GCC on Linux, beside
 * PyTorch's libgomp, which the loader reuses) its threads are PyTorch's and follow torch.set_num_threads();
 * elsewhere it runs on one thread. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>

void rmsprop_tf1(int n, float **var, float **grad, float **ms, float **mom, const int64_t *sizes,
                 float lr, float decay, float momentum, float eps) {
    const float take = 1.0f - decay;
    int64_t total = 0;
    for (int t = 0; t < n; t++) total += sizes[t];
#pragma omp parallel if (total > 65536)
    for (int t = 0; t < n; t++) {
        float *restrict v = var[t], *restrict m = ms[t];
        const float *restrict g = grad[t];
        const int64_t len = sizes[t];
        if (mom == NULL) {
#pragma omp for simd schedule(static) nowait
            for (int64_t i = 0; i < len; i++) {
                const float gi = g[i], s = decay * m[i] + take * gi * gi;
                m[i] = s;
                v[i] -= lr * gi / sqrtf(s + eps);
            }
        } else {
            float *restrict u = mom[t];
#pragma omp for simd schedule(static) nowait
            for (int64_t i = 0; i < len; i++) {
                const float gi = g[i], s = decay * m[i] + take * gi * gi;
                const float step = momentum * u[i] + lr * gi / sqrtf(s + eps);
                m[i] = s;
                u[i] = step;
                v[i] -= step;
            }
        }
    }
}
