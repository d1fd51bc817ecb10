/* The native core's per-frame speed through the C ABI alone (no Python): bench/speed.py's C
 * counterpart.
 *
 *   th_bench PACKAGE_DIR [THREADS=2] [BATCHES=1,4,16] [SECONDS=1.0] [VARIANT=fp32]
 *
 * For each batch size: th_render (rasterising landmarks, the generator on ONNX Runtime, RGB8
 * conversion) on a synthetic talking face — cost does not depend on the values — after 3 warm-up
 * calls, repeated for at least SECONDS and 7 calls; prints one JSON object per batch:
 *   {"runtime": "native-c", "variant": V, "batch": B, "threads": T, "ms_per_frame": M, "calls": N}
 * VARIANT is a generator variant of the package ("fp32", "int8", ...).
 * Exit status 0, or 1 with the library's error message.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _WIN32
#include <windows.h>
#endif

#include "talkinghead.h"

static double now_s(void) {
#ifdef _WIN32
    LARGE_INTEGER count, freq;
    QueryPerformanceCounter(&count);
    QueryPerformanceFrequency(&freq);
    return (double)count.QuadPart / (double)freq.QuadPart;
#else
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
#endif
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* A face-like layout in crop-normalised coordinates: 68 points on an ellipse, moved a little per frame. */
static void landmarks(float *out, int batch, int frame) {
    for (int b = 0; b < batch; ++b) {
        for (int i = 0; i < 68; ++i) {
            double a = 2.0 * 3.14159265358979 * i / 68.0;
            double open = 0.02 * sin(0.3 * (frame + b));
            out[(b * 68 + i) * 2 + 0] = (float)(0.5 + 0.22 * cos(a));
            out[(b * 68 + i) * 2 + 1] = (float)(0.55 + (0.26 + (i >= 48 ? open : 0.0)) * sin(a));
        }
    }
}

static int fail(const char *what) {
    fprintf(stderr, "th_bench: %s: %s\n", what, th_last_error());
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: th_bench PACKAGE_DIR [THREADS=2] [BATCHES=1,4,16] [SECONDS=1.0] [VARIANT=fp32]\n");
        return 2;
    }
    int threads = argc > 2 ? atoi(argv[2]) : 2;
    const char *batches = argc > 3 ? argv[3] : "1,4,16";
    double seconds = argc > 4 ? atof(argv[4]) : 1.0;
    const char *variant = argc > 5 ? argv[5] : "fp32";

    th_model_config config;
    th_model_config_init(&config);
    config.provider = TH_PROVIDER_CPU;
    config.intra_op_threads = threads;
    config.variant = variant;
    th_model *model = NULL;
    if (th_model_load(argv[1], &config, &model) != TH_OK) return fail("loading the package");
    th_model_info info;
    th_model_info_init(&info);
    if (th_model_get_info(model, &info) != TH_OK) return fail("model info");

    th_avatar *avatar = NULL;
    if (!info.personalised) {
        float *identity = calloc((size_t)info.embedding_dim, sizeof(float));
        for (int i = 0; i < info.embedding_dim; ++i) identity[i] = 0.05f * (float)sin(0.7 * i);
        th_status s = th_avatar_from_identity(model, identity, info.embedding_dim, NULL, &avatar);
        free(identity);
        if (s != TH_OK) return fail("avatar");
    }

    char list[256];
    snprintf(list, sizeof list, "%s", batches);
    int status = 0;
    for (char *tok = strtok(list, ","); tok && status == 0; tok = strtok(NULL, ",")) {
        int batch = atoi(tok);
        if (batch < 1) continue;
        size_t frame_bytes = (size_t)info.resolution * (size_t)info.resolution * 3;
        uint8_t *out = malloc(frame_bytes * (size_t)batch);
        float *lm = malloc(sizeof(float) * 136 * (size_t)batch);
        double *times = malloc(sizeof(double) * 10000);
        int calls = 0;
        for (int w = 0; w < 3 && status == 0; ++w) {
            landmarks(lm, batch, w);
            if (th_render(model, avatar, lm, batch, NULL, out, frame_bytes * (size_t)batch) != TH_OK) status = fail("render");
        }
        double start = now_s();
        while (status == 0 && calls < 10000 && (calls < 7 || now_s() - start < seconds)) {
            landmarks(lm, batch, calls);
            double t = now_s();
            if (th_render(model, avatar, lm, batch, NULL, out, frame_bytes * (size_t)batch) != TH_OK) {
                status = fail("render");
                break;
            }
            times[calls++] = now_s() - t;
        }
        if (status == 0) {
            qsort(times, (size_t)calls, sizeof(double), cmp_double);
            double median = calls % 2 ? times[calls / 2] : 0.5 * (times[calls / 2 - 1] + times[calls / 2]);
            printf("{\"runtime\": \"native-c\", \"variant\": \"%s\", \"batch\": %d, \"threads\": %d, "
                   "\"ms_per_frame\": %.3f, \"calls\": %d}\n",
                   variant, batch, threads, 1000.0 * median / batch, calls);
            fflush(stdout);
        }
        free(out);
        free(lm);
        free(times);
    }
    th_avatar_destroy(avatar);
    th_model_destroy(model);
    return status;
}
