/* A batch of uint8 images as float32 in [0, 1]: rows idx[0], idx[1], ... of x, each pixel times scale, in one
 * pass. PyTorch makes it two (index_select, then the cast-and-scale multiply, which alone took 0.12 ms of a
 * 4 ms training step). Returns 0, or -1 - i where idx[i] is not a row of x (nothing is then written). */
#include <stdint.h>

int64_t gather_scaled_u8(int64_t n, int64_t cols, const uint8_t *restrict x, int64_t rows,
                         const int64_t *restrict idx, float scale, float *restrict out) {
    for (int64_t i = 0; i < rows; i++)
        if (idx[i] < 0 || idx[i] >= n) return -1 - i;
#pragma omp parallel for schedule(static) if (rows * cols > 65536)
    for (int64_t i = 0; i < rows; i++) {
        const uint8_t *restrict src = x + idx[i] * cols;
        float *restrict dst = out + i * cols;
#pragma omp simd
        for (int64_t j = 0; j < cols; j++) dst[j] = (float)src[j] * scale;
    }
    return 0;
}
