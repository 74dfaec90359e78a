/*
 * Fused CPU kernels of LogMelTransformer, around torch's (MKL) real FFT.
 *
 * The torch path of LogMelTransformer spends more time in the passes around
 * the Fourier transform (laying the clips end to end, windowing, |X|^2, the
 * mel projection, the logarithm, the transposed write with the top_db floor)
 * than in the transform itself, because each pass streams the whole chunk
 * through memory. These kernels do the same work in three passes whose data
 * stays in the caches:
 *
 *   tser_frame    windowed frames straight from the clips (no padded signal),
 *                 and the check for NaN and infinite samples;
 *   tser_mel_db   on tiles of 16 frames: |X|^2 transposed to bins x frames,
 *                 each mel filter over its non-zero bins only (16 frames per
 *                 vector FMA), and 10 log10;
 *   tser_write    per clip: peak, top_db floor, write into the output array,
 *                 NaN padding.
 *
 * They are called through ctypes (see _kernels.py), parallelised with OpenMP
 * (the runtime torch already loaded, so torch.set_num_threads applies), and
 * compiled for AVX-512, AVX2 and baseline x86-64 where GCC's target_clones is
 * available. The code uses GCC's vector extensions (__builtin_shuffle), so
 * other compilers do not build it. The module is optional: when it is not
 * built, LogMelTransformer uses its torch path, with the same results to
 * float32 rounding.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__) && defined(__x86_64__) && defined(__linux__) && !defined(__clang__)
#define TSER_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define TSER_CLONES
#endif

/* Let the vectoriser call glibc's vector logf (libmvec) without -ffast-math. */
#if defined(__GNUC__) && defined(__x86_64__) && defined(__linux__) && defined(_OPENMP)
#pragma omp declare simd notinbranch
extern float logf(float);
#endif

#define TSER_DB_PER_NEPER 4.3429448190325182f /* 10 / ln(10) */

/* Must equal _kernels.ABI_VERSION; bump both when a signature changes. */
int64_t tser_abi_version(void) { return 1; }

#define TSER_BLOCK 64 /* frames per parallel task of tser_frame */

/* Split each clip's counts[k] frames into blocks of TSER_BLOCK; first[k] is
 * the index of clip k's first block. Returns the number of blocks, -1 if
 * memory failed. The caller frees *first. */
static int64_t tser_blocks(int64_t n_clips, const int64_t *counts, int64_t **first)
{
    int64_t *b = malloc((n_clips + 1) * sizeof(int64_t));
    if (b == NULL) return -1;
    b[0] = 0;
    for (int64_t k = 0; k < n_clips; k++)
        b[k + 1] = b[k] + (counts[k] + TSER_BLOCK - 1) / TSER_BLOCK;
    *first = b;
    return b[n_clips];
}

/* Clip of block i: the k with first[k] <= i < first[k + 1]. */
static int64_t tser_block_clip(const int64_t *first, int64_t n_clips, int64_t i)
{
    int64_t a = 0, z = n_clips - 1;
    while (a < z) {
        int64_t m = (a + z + 1) / 2;
        if (first[m] <= i) a = m; else z = m - 1;
    }
    return a;
}

/* The bits of a float, read through a type that may alias it. */
typedef uint32_t tser_bits __attribute__((may_alias));

/* 1 if the n floats at x are all finite (no NaN, no infinity), else 0: a
 * float is not finite when its exponent bits are all ones. */
TSER_CLONES
static int64_t all_finite(const tser_bits *x, int64_t n)
{
    uint32_t bad = 0;
    for (int64_t i = 0; i < n; i++) bad |= (x[i] & 0x7f800000u) == 0x7f800000u;
    return !bad;
}

/* Frames of one clip, windowed: frame t holds samples t*hop - half + j,
 * j in [wlo, whi), times win[j] (zero outside the clip). Only columns
 * [wlo, whi) of the frame rows are written: the caller keeps the rest zero. */
TSER_CLONES
static void frame_clip(const float *x, int64_t n, int64_t t0, int64_t t1,
                       int64_t hop, int64_t half, const float *win,
                       int64_t n_fft, int64_t wlo, int64_t whi, float *rows)
{
    for (int64_t t = t0; t < t1; t++) {
        float *f = rows + (t - t0) * n_fft;
        int64_t s0 = t * hop - half;
        if (s0 + wlo >= 0 && s0 + whi <= n) {
            const float *xs = x + s0;
            for (int64_t j = wlo; j < whi; j++) f[j] = xs[j] * win[j];
        } else {
            for (int64_t j = wlo; j < whi; j++) {
                int64_t s = s0 + j;
                f[j] = (s >= 0 && s < n) ? x[s] * win[j] : 0.0f;
            }
        }
    }
}

/* Clip k (address ptrs[k], lens[k] samples) gets its frames 0 .. counts[k]
 * in rows starts[k] - row0, ... of frames (row length n_fft). bad[k] is set
 * to 1 if the clip has a NaN or infinite sample: each block of frames [a, z)
 * checks samples [a * hop, z * hop), the last one up to the clip's end, so
 * that every sample is checked once, even those no window covers. */
int64_t tser_frame(int64_t n_clips, const int64_t *ptrs, const int64_t *lens,
                   const int64_t *counts, const int64_t *starts, int64_t row0,
                   int64_t hop, int64_t half, const float *win, int64_t n_fft,
                   int64_t wlo, int64_t whi, float *frames, int64_t *bad)
{
    int64_t *first, i;
    int64_t n_blocks = tser_blocks(n_clips, counts, &first);
    if (n_blocks < 0) return -1;
#pragma omp parallel for schedule(static)
    for (i = 0; i < n_blocks; i++) {
        int64_t k = tser_block_clip(first, n_clips, i);
        int64_t a = (i - first[k]) * TSER_BLOCK;
        int64_t z = a + TSER_BLOCK < counts[k] ? a + TSER_BLOCK : counts[k];
        const float *x = (const float *)(intptr_t)ptrs[k];
        frame_clip(x, lens[k], a, z, hop, half, win, n_fft, wlo, whi,
                   frames + (starts[k] - row0 + a) * n_fft);
        int64_t s0 = a * hop < lens[k] ? a * hop : lens[k];
        int64_t s1 = (z == counts[k] || z * hop > lens[k]) ? lens[k] : z * hop;
        if (!all_finite((const tser_bits *)(x + s0), s1 - s0)) {
#pragma omp atomic write
            bad[k] = 1;
        }
    }
    free(first);
    return 0;
}

/* 16 floats: one AVX-512 register, two AVX2 or four SSE ones (GCC vector
 * extension, so that every target_clones variant gets the same code). */
typedef float tser_v16 __attribute__((vector_size(64)));
typedef int32_t tser_i16 __attribute__((vector_size(64)));

/* One stage of a 16x16 transpose: rows i and i + b swap the columns whose bit
 * b differs from their own. The four stages b = 8, 4, 2, 1 swap every bit of
 * the row index with the same bit of the column index. */
#define TSER_LO(c, b) (((c) & (b)) ? 16 + (c) - (b) : (c))
#define TSER_HI(c, b) (((c) & (b)) ? 16 + (c) : (c) + (b))
#define TSER_MASK(F, b)                                                       \
    {F(0, b), F(1, b), F(2, b), F(3, b), F(4, b), F(5, b), F(6, b), F(7, b), \
     F(8, b), F(9, b), F(10, b), F(11, b), F(12, b), F(13, b), F(14, b),     \
     F(15, b)}
#define TSER_STAGE(r, b)                                                      \
    do {                                                                      \
        const tser_i16 lo_ = TSER_MASK(TSER_LO, b);                           \
        const tser_i16 hi_ = TSER_MASK(TSER_HI, b);                           \
        for (int i_ = 0; i_ < 16; i_++)                                       \
            if (!(i_ & (b))) {                                                \
                tser_v16 x_ = r[i_], y_ = r[i_ + (b)];                        \
                r[i_] = __builtin_shuffle(x_, y_, lo_);                       \
                r[i_ + (b)] = __builtin_shuffle(x_, y_, hi_);                 \
            }                                                                 \
    } while (0)

/* 16 frames (rows past nt repeat the last one; their results are dropped).
 * First pt[k], the power of bin k in each of the 16 frames: 16 bins of 16
 * frames at a time, de-interleaved from the spectra and transposed. Then each
 * mel band m is a sum over its bins [mlo[m], mhi[m]) of weight * pt[k], for
 * the 16 frames at once, and 10 log10(max(amin, .)) goes to db[m * ld + t]. */
TSER_CLONES
static void mel_tile(int64_t nt, const float *spec, int64_t n_freq,
                     int64_t n_mels, const int64_t *mlo, const int64_t *mhi,
                     const int64_t *moff, const float *mw, float amin,
                     float power, tser_v16 *pt, float *db, int64_t ld)
{
    const tser_i16 even = {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30};
    const tser_i16 odd = {1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31};
    int64_t full = n_freq / 16; /* blocks of 16 bins read with vector loads */
    for (int64_t kb = 0; kb < full; kb++) {
        tser_v16 r[16];
        for (int t = 0; t < 16; t++) {
            const float *s = spec + (t < nt ? t : nt - 1) * 2 * n_freq + 32 * kb;
            tser_v16 a, b;
            memcpy(&a, s, sizeof a);
            memcpy(&b, s + 16, sizeof b);
            tser_v16 re = __builtin_shuffle(a, b, even);
            tser_v16 im = __builtin_shuffle(a, b, odd);
            r[t] = re * re + im * im;
        }
        TSER_STAGE(r, 8);
        TSER_STAGE(r, 4);
        TSER_STAGE(r, 2);
        TSER_STAGE(r, 1);
        memcpy(pt + 16 * kb, r, sizeof r);
    }
    for (int64_t k = 16 * full; k < n_freq; k++) {
        float v[16];
        for (int t = 0; t < 16; t++) {
            const float *s = spec + (t < nt ? t : nt - 1) * 2 * n_freq + 2 * k;
            v[t] = s[0] * s[0] + s[1] * s[1];
        }
        memcpy(pt + k, v, sizeof v);
    }
    if (power != 2.0f) {
        float e = power / 2.0f;
        float *f = (float *)pt;
        for (int64_t i = 0; i < 16 * n_freq; i++) f[i] = powf(f[i], e);
    }
    for (int64_t m = 0; m < n_mels; m++) {
        /* Two accumulators, so that consecutive FMAs do not wait on each other. */
        tser_v16 acc0 = {0}, acc1 = {0};
        const float *w = mw + moff[m];
        int64_t k = mlo[m];
        for (; k + 1 < mhi[m]; k += 2, w += 2) {
            acc0 += w[0] * pt[k];
            acc1 += w[1] * pt[k + 1];
        }
        if (k < mhi[m]) acc0 += w[0] * pt[k];
        tser_v16 acc = acc0 + acc1;
        float v[16];
        memcpy(v, &acc, sizeof v);
#pragma omp simd
        for (int j = 0; j < 16; j++)
            v[j] = TSER_DB_PER_NEPER * logf(v[j] > amin ? v[j] : amin);
        memcpy(db + m * ld, v, nt * sizeof(float));
    }
}

/* dB mel energies of n_frames spectra (interleaved re/im rows of 2*n_freq
 * floats) into db, (n_mels, n_frames). Mel band m has the weights
 * mw[moff[m]:] on bins [mlo[m], mhi[m]). Returns -1 if memory failed. */
int64_t tser_mel_db(int64_t n_frames, const float *spec, int64_t n_freq,
                    int64_t n_mels, const int64_t *mlo, const int64_t *mhi,
                    const int64_t *moff, const float *mw, float amin,
                    float power, float *db)
{
    int64_t n_tiles = (n_frames + 15) / 16;
    int failed = 0;
#pragma omp parallel
    {
        tser_v16 *pt = aligned_alloc(64, n_freq * sizeof(tser_v16));
        if (pt == NULL) {
#pragma omp atomic write
            failed = 1;
        }
        int64_t i;
#pragma omp for schedule(static)
        for (i = 0; i < n_tiles; i++) {
            if (pt == NULL) continue;
            int64_t f0 = 16 * i;
            int64_t nt = n_frames - f0 < 16 ? n_frames - f0 : 16;
            mel_tile(nt, spec + f0 * 2 * n_freq, n_freq, n_mels, mlo, mhi, moff,
                     mw, amin, power, pt, db + f0, n_frames);
        }
        free(pt);
    }
    return failed ? -1 : 0;
}

/* Largest of n values. */
TSER_CLONES
static float peak_of(const float *d, int64_t n)
{
    float peak = d[0];
    for (int64_t i = 1; i < n; i++) peak = d[i] > peak ? d[i] : peak;
    return peak;
}

/* o[t] = max(d[t], floor_db) for t < n, then NaN up to width. */
TSER_CLONES
static void write_row(const float *d, int64_t n, float *o, int64_t width,
                      float floor_db)
{
    for (int64_t t = 0; t < n; t++) o[t] = d[t] > floor_db ? d[t] : floor_db;
    for (int64_t t = n; t < width; t++) o[t] = NAN;
}

/* Clip k: columns [rows[k] - row0, rows[k] - row0 + counts[k]) of db (n_mels
 * rows of length ld). With use_top, its peak over those columns less top_db
 * floors the values. Columns offs[k] .. offs[k] + widths[k] of them are
 * written to out (n_mels rows of out_width floats at address outs[k]), and NaN
 * fills columns widths[k] .. out_width. One task per clip and mel band.
 * Returns -1 if memory failed. */
int64_t tser_write(int64_t n_clips, const float *db, int64_t n_mels, int64_t ld,
                   const int64_t *rows, int64_t row0, const int64_t *counts,
                   const int64_t *offs, const int64_t *widths,
                   const int64_t *outs, int64_t out_width, float top_db,
                   int64_t use_top)
{
    int64_t n_tasks = n_clips * n_mels;
    float *peaks = malloc(n_tasks * sizeof(float));
    float *floors = malloc(n_clips * sizeof(float));
    if (peaks == NULL || floors == NULL) {
        free(peaks);
        free(floors);
        return -1;
    }
#pragma omp parallel
    {
        int64_t i;
        if (use_top) {
#pragma omp for schedule(static)
            for (i = 0; i < n_tasks; i++) {
                int64_t k = i / n_mels, m = i % n_mels;
                peaks[i] = peak_of(db + m * ld + rows[k] - row0, counts[k]);
            }
        }
#pragma omp single
        for (int64_t k = 0; k < n_clips; k++) {
            floors[k] = -HUGE_VALF;
            if (use_top) {
                float peak = peaks[k * n_mels];
                for (int64_t m = 1; m < n_mels; m++)
                    peak = peaks[k * n_mels + m] > peak ? peaks[k * n_mels + m] : peak;
                floors[k] = peak - top_db;
            }
        }
#pragma omp for schedule(static)
        for (i = 0; i < n_tasks; i++) {
            int64_t k = i / n_mels, m = i % n_mels;
            write_row(db + m * ld + rows[k] - row0 + offs[k], widths[k],
                      (float *)(intptr_t)outs[k] + m * out_width, out_width,
                      floors[k]);
        }
    }
    free(peaks);
    free(floors);
    return 0;
}

/* A module with no Python functions: _kernels.py loads this file with ctypes. */
static struct PyModuleDef tser_module = {
    PyModuleDef_HEAD_INIT, "_kernels_c", "Fused log-mel kernels, called through ctypes.",
    -1, NULL, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__kernels_c(void) { return PyModule_Create(&tser_module); }
