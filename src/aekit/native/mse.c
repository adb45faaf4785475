/* The mean squared error of a sigmoid output, forward and backward, one pass each.
 *
 *     forward:  sum over i of (y[i] - t[i])^2              (the caller divides by n)
 *     backward: dz[i] = scale * (y[i] - t[i]) * y[i] * (1 - y[i]),   scale = 2 * dloss / n
 *
 * where y = sigmoid(z) is the output and dz the gradient on z, before the sigmoid. PyTorch makes that three
 * kernels (mse_loss_backward, sigmoid_backward, and the loss's own temporary); here each is one pass. */
#include <stdint.h>

double squared_error_sum(int64_t n, const float *restrict y, const float *restrict t) {
    double total = 0.0;
#pragma omp parallel for simd reduction(+ : total) schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) {
        const float d = y[i] - t[i];
        total += (double)(d * d);
    }
    return total;
}

void sigmoid_mse_backward(int64_t n, const float *restrict y, const float *restrict t, float scale,
                          float *restrict dz) {
#pragma omp parallel for simd schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) {
        const float yi = y[i];
        dz[i] = scale * (yi - t[i]) * yi * (1.0f - yi);
    }
}
