/*
 * The CPU's arithmetic peak, measured: each thread runs independent chains of vector multiply-adds that never
 * touch memory (fp32 FMA, and int8 dot products u8×s8→s32 where the CPU has VNNI), long enough to reach its
 * sustained clock. Enough independent accumulators hide the instruction latency, so the loop is bound by the
 * number of vector units only. Prints one JSON line: fp32 GFLOP/s (2 per FMA lane) and int8 GOP/s (2 per
 * multiply-add) over all threads, best of the repeats.
 *
 * Build: cc -O2 -march=native -pthread cpuPeak.c -o cpuPeak;  run: ./cpuPeak THREADS REPEATS
 */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define ACC 16
#define ITERS 40000000L
/* Sixteen named accumulators, written out so that they live in registers at -O2 (a loop over an array did not). */
#define EACH16(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15)

#if defined(__AVX512F__)
#define WIDTH "avx512"
typedef __m512 vf;
#define LANES 16
#define SET1(x) _mm512_set1_ps(x)
#define FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define SUM(v) _mm512_reduce_add_ps(v)
#elif defined(__FMA__)
#define WIDTH "avx2"
typedef __m256 vf;
#define LANES 8
#define SET1(x) _mm256_set1_ps(x)
#define FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
static float SUM(__m256 v) { float t[8]; _mm256_storeu_ps(t, v); return t[0] + t[1] + t[2] + t[3] + t[4] + t[5] + t[6] + t[7]; }
#else
#error "needs FMA (AVX2) or AVX-512"
#endif

static volatile float sink_f;
static volatile int sink_i;

static void *fp32_chain(void *arg) {
  (void)arg;
  /* x ← x·m + c converges towards c/(1−m): no overflow, no denormals, and the compiler cannot fold it. */
  const vf m = SET1(0.999999f), c = SET1(1e-6f);
#define INIT(j) vf a##j = SET1((float)j);
#define STEP(j) a##j = FMA(a##j, m, c);
#define ADD(j) s += SUM(a##j);
  EACH16(INIT)
  for (long i = 0; i < ITERS; i++) { EACH16(STEP) }
  float s = 0;
  EACH16(ADD)
  sink_f = s;
  return NULL;
}

#if defined(__AVX512VNNI__)
#define HAS_VNNI 1
static void *int8_chain(void *arg) {
  (void)arg;
  const __m512i x = _mm512_set1_epi8(3), y = _mm512_set1_epi8(-2);
#define INITI(j) __m512i q##j = _mm512_set1_epi32(j);
/* Inline assembly: GCC 12 copies every accumulator through extra registers around the intrinsic, which halves
   the rate this loop measures. */
#define STEPI(j) __asm__("vpdpbusd %1, %2, %0" : "+v"(q##j) : "v"(y), "v"(x));
#define ADDI(j) s += _mm512_reduce_add_epi32(q##j);
  EACH16(INITI)
  for (long i = 0; i < ITERS; i++) { EACH16(STEPI) }
  int s = 0;
  EACH16(ADDI)
  sink_i = s;
  return NULL;
}
#else
#define HAS_VNNI 0
#endif

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

/* Seconds for `threads` threads each running `fn` once. */
static double timed(void *(*fn)(void *), int threads) {
  pthread_t th[256];
  double t0 = now();
  for (int i = 0; i < threads; i++) pthread_create(&th[i], NULL, fn, NULL);
  for (int i = 0; i < threads; i++) pthread_join(th[i], NULL);
  return now() - t0;
}

int main(int argc, char **argv) {
  int threads = argc > 1 ? atoi(argv[1]) : 1;
  int repeats = argc > 2 ? atoi(argv[2]) : 3;
  if (threads < 1 || threads > 256) threads = 1;
  double f = 1e30, q = 1e30;
  for (int r = 0; r < repeats; r++) {
    double t = timed(fp32_chain, threads);
    if (t < f) f = t;
#if HAS_VNNI
    t = timed(int8_chain, threads);
    if (t < q) q = t;
#endif
  }
  double ops = (double)ITERS * ACC * threads;
  printf("{\"width\":\"%s\",\"threads\":%d,\"fp32_gflops\":%.1f,\"fp32_seconds\":%.4f", WIDTH, threads, ops * LANES * 2 / f / 1e9, f);
#if HAS_VNNI
  printf(",\"int8_gops\":%.1f,\"int8_seconds\":%.4f", ops * 64 * 2 / q / 1e9, q);
#endif
  printf("}\n");
  return 0;
}
