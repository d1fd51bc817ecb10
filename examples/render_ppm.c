/*
 * render_ppm.c — a plain-C program on talkinghead.h: load a model package, make an avatar from
 * image files, render frames driven by a landmarks file, write them as PPM images.
 *
 *   th_example PACKAGE OUT_DIR --shot IMAGE.ppm LANDMARKS.txt [--shot ...] --drive DRIVE.txt
 *              [--pixels] [--relative] [--batch N]
 *              [--stream [--fps F] [--mouth-open X] [--smile X] [--yaw DEG]]
 *
 * Images are binary PPM (P6, 8-bit RGB): convert a photo with any tool, e.g. Python's
 *   PIL.Image.open("me.jpg").save("me.ppm").
 * Landmark files are text: numbers separated by white space, 68 (x, y) pairs per face, '#' starts
 * a comment line. A shot's landmarks are in its image's pixels. DRIVE.txt holds one face per
 * frame, in pixels of the driving video with --pixels, else crop-normalised. --relative transfers
 * the driver's motion since its first frame onto the avatar's own face (as talkinghead animate).
 * --stream pushes the frames one at a time through a th_stream, as a live source would (frame i at
 * i / F seconds, default F = 25): the stream keeps the motion reference (relative motion), smooths the landmarks on their timestamps and applies
 * the controls (--mouth-open, --smile, --yaw).
 * Writes OUT_DIR/frame_0000.ppm, ... (OUT_DIR must exist or be creatable).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _WIN32
#include <direct.h>
#define make_dir(path) _mkdir(path)
#else
#include <sys/stat.h>
#define make_dir(path) mkdir(path, 0755)
#endif

#include "talkinghead.h"

#define MAX_SHOTS TH_MAX_SHOTS
#define FACE_FLOATS (TH_NUM_LANDMARKS * 2)

typedef struct {
    uint8_t *rgb;
    int width, height;
} ppm_image;

/* Skip white space and '#' comments in a PPM header. */
static int ppm_skip(FILE *f) {
    int c;
    for (;;) {
        c = fgetc(f);
        if (c == '#') {
            while (c != '\n' && c != EOF) c = fgetc(f);
        } else if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
            break;
        }
    }
    if (c != EOF) ungetc(c, f);
    return c;
}

static int ppm_read(const char *path, ppm_image *img) {
    int maxval = 0;
    size_t n;
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s: %s\n", path, strerror(errno));
        return 0;
    }
    if (fgetc(f) != 'P' || fgetc(f) != '6') {
        fprintf(stderr, "%s is not a binary PPM (P6) image\n", path);
        fclose(f);
        return 0;
    }
    ppm_skip(f);
    if (fscanf(f, "%d", &img->width) != 1) goto bad;
    ppm_skip(f);
    if (fscanf(f, "%d", &img->height) != 1) goto bad;
    ppm_skip(f);
    if (fscanf(f, "%d", &maxval) != 1) goto bad;
    fgetc(f); /* the single white space before the pixels */
    if (img->width <= 0 || img->height <= 0 || img->width > 16384 || img->height > 16384 || maxval != 255) goto bad;
    n = (size_t)img->width * (size_t)img->height * 3;
    img->rgb = (uint8_t *)malloc(n);
    if (!img->rgb || fread(img->rgb, 1, n, f) != n) {
        free(img->rgb);
        img->rgb = NULL;
        goto bad;
    }
    fclose(f);
    return 1;
bad:
    fprintf(stderr, "%s: unsupported or truncated PPM (8-bit P6 only)\n", path);
    fclose(f);
    return 0;
}

static int ppm_write(const char *path, const uint8_t *rgb, int width, int height) {
    size_t n = (size_t)width * (size_t)height * 3;
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
        return 0;
    }
    fprintf(f, "P6\n%d %d\n255\n", width, height);
    if (fwrite(rgb, 1, n, f) != n) {
        fclose(f);
        return 0;
    }
    return fclose(f) == 0;
}

/* Read all numbers of a landmarks file; returns the number of faces (0 on error). */
static int read_faces(const char *path, float **out) {
    size_t count = 0, cap = FACE_FLOATS;
    float *v = (float *)malloc(cap * sizeof(float));
    char line[4096];
    FILE *f = fopen(path, "r");
    if (!f || !v) {
        fprintf(stderr, "cannot open %s: %s\n", path, strerror(errno));
        if (f) fclose(f);
        free(v);
        return 0;
    }
    while (fgets(line, sizeof line, f)) {
        char *p = line, *end;
        if (line[0] == '#') continue;
        for (;;) {
            float x = strtof(p, &end);
            if (end == p) break;
            if (count == cap) {
                float *bigger = (float *)realloc(v, 2 * cap * sizeof(float));
                if (!bigger) {
                    fclose(f);
                    free(v);
                    return 0;
                }
                v = bigger;
                cap *= 2;
            }
            v[count++] = x;
            p = end;
        }
    }
    fclose(f);
    if (count == 0 || count % FACE_FLOATS != 0) {
        fprintf(stderr, "%s: %lu numbers, not a whole number of 68-point faces\n", path, (unsigned long)count);
        free(v);
        return 0;
    }
    *out = v;
    return (int)(count / FACE_FLOATS);
}

static void log_to_stderr(void *user, th_log_level level, const char *message) {
    (void)user;
    fprintf(stderr, "[talkinghead %d] %s\n", (int)level, message);
}

static int usage(void) {
    fprintf(stderr, "usage: th_example PACKAGE OUT_DIR --shot IMAGE.ppm LANDMARKS.txt [--shot ...] "
                    "--drive DRIVE.txt [--pixels] [--relative] [--batch N] "
                    "[--stream [--fps F] [--mouth-open X] [--smile X] [--yaw DEG]]\n");
    return 2;
}

static int write_frame(const char *out_dir, int index, const uint8_t *rgb, int resolution) {
    char path[4096];
    snprintf(path, sizeof path, "%s/frame_%04d.ppm", out_dir, index);
    return ppm_write(path, rgb, resolution, resolution);
}

/* Push the frames one at a time through a stream (a live source's loop). */
static int stream_frames(th_model *model, const th_avatar *avatar, const float *drive, int frames, int pixels,
                         double fps, const th_controls *controls, const char *out_dir, int resolution) {
    th_stream *stream = NULL;
    size_t frame_bytes = (size_t)resolution * (size_t)resolution * 3;
    uint8_t *out = (uint8_t *)malloc(frame_bytes);
    int64_t pushed = 0, rendered = 0, failed = 0;
    int i, ok = 0;
    if (!out) return 0;
    if (th_stream_create(model, avatar, NULL, &stream) != TH_OK || th_stream_set_controls(stream, controls) != TH_OK) {
        fprintf(stderr, "cannot start the stream: %s\n", th_last_error());
        goto done;
    }
    for (i = 0; i < frames; ++i) {
        if (th_stream_push(stream, drive + (size_t)i * FACE_FLOATS, pixels ? TH_COORDS_PIXELS : TH_COORDS_NORMALISED,
                           i / fps, out, frame_bytes) != TH_OK) {
            fprintf(stderr, "push failed at frame %d: %s\n", i, th_last_error());
            goto done;
        }
        if (!write_frame(out_dir, i, out, resolution)) goto done;
    }
    th_stream_get_stats(stream, &pushed, &rendered, &failed);
    printf("stream: %lld pushed, %lld rendered, %lld failed\n", (long long)pushed, (long long)rendered, (long long)failed);
    ok = 1;
done:
    th_stream_destroy(stream);
    free(out);
    return ok;
}

int main(int argc, char **argv) {
    const char *package, *out_dir, *drive_path = NULL;
    const char *shot_images[MAX_SHOTS], *shot_landmarks[MAX_SHOTS];
    int shots = 0, pixels = 0, relative = 0, batch = 4, i, rc = 1, frames = 0, stream = 0;
    double fps = 25.0;
    th_controls controls;
    th_model *model = NULL;
    th_avatar *avatar = NULL;
    th_model_info info;
    th_render_options options;
    ppm_image images[MAX_SHOTS];
    th_image views[MAX_SHOTS];
    float shot_points[MAX_SHOTS * FACE_FLOATS];
    float *drive = NULL;
    uint8_t *out = NULL;
    size_t frame_bytes;

    th_controls_init(&controls);
    if (argc < 3) return usage();
    package = argv[1];
    out_dir = argv[2];
    for (i = 3; i < argc; ++i) {
        if (strcmp(argv[i], "--shot") == 0 && i + 2 < argc && shots < MAX_SHOTS) {
            shot_images[shots] = argv[i + 1];
            shot_landmarks[shots++] = argv[i + 2];
            i += 2;
        } else if (strcmp(argv[i], "--drive") == 0 && i + 1 < argc) {
            drive_path = argv[++i];
        } else if (strcmp(argv[i], "--pixels") == 0) {
            pixels = 1;
        } else if (strcmp(argv[i], "--relative") == 0) {
            relative = 1;
        } else if (strcmp(argv[i], "--batch") == 0 && i + 1 < argc) {
            batch = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--stream") == 0) {
            stream = 1;
        } else if (strcmp(argv[i], "--fps") == 0 && i + 1 < argc) {
            fps = atof(argv[++i]);
        } else if (strcmp(argv[i], "--mouth-open") == 0 && i + 1 < argc) {
            controls.mouth_open = atof(argv[++i]);
        } else if (strcmp(argv[i], "--smile") == 0 && i + 1 < argc) {
            controls.smile = atof(argv[++i]);
        } else if (strcmp(argv[i], "--yaw") == 0 && i + 1 < argc) {
            controls.yaw = atof(argv[++i]);
        } else {
            return usage();
        }
    }
    if (shots == 0 || !drive_path || batch < 1 || !(fps > 0)) return usage();
    if (th_abi_version() != TH_ABI_VERSION) {
        fprintf(stderr, "libtalkinghead ABI %u, this program was built for %u\n", th_abi_version(), TH_ABI_VERSION);
        return 1;
    }
    th_set_log_callback(log_to_stderr, NULL, TH_LOG_WARNING);
    memset(images, 0, sizeof images);

    if (th_model_load(package, NULL, &model) != TH_OK) {
        fprintf(stderr, "cannot load %s: %s\n", package, th_last_error());
        goto done;
    }
    th_model_info_init(&info);
    th_model_get_info(model, &info);
    printf("model %s: %dx%d, %s, ONNX Runtime %s\n", info.name, info.resolution, info.resolution,
           info.provider == TH_PROVIDER_CUDA ? "CUDA" : "CPU", info.ort_version);

    for (i = 0; i < shots; ++i) {
        float *pts = NULL;
        int faces;
        if (!ppm_read(shot_images[i], &images[i])) goto done;
        faces = read_faces(shot_landmarks[i], &pts);
        if (faces != 1) {
            fprintf(stderr, "%s: expected one face, got %d\n", shot_landmarks[i], faces);
            free(pts);
            goto done;
        }
        memcpy(shot_points + i * FACE_FLOATS, pts, sizeof(float) * FACE_FLOATS);
        free(pts);
        views[i].data = images[i].rgb;
        views[i].width = images[i].width;
        views[i].height = images[i].height;
        views[i].stride = images[i].width * 3;
        views[i].size = (size_t)images[i].width * images[i].height * 3;
    }
    if (th_avatar_create(model, views, shot_points, shots, &avatar) != TH_OK) {
        fprintf(stderr, "cannot make the avatar: %s\n", th_last_error());
        goto done;
    }

    frames = read_faces(drive_path, &drive);
    if (frames == 0) goto done;
    make_dir(out_dir);
    if (stream) {
        if (!stream_frames(model, avatar, drive, frames, pixels, fps, &controls, out_dir, info.resolution)) goto done;
        printf("wrote %d frames to %s\n", frames, out_dir);
        rc = 0;
        goto done;
    }
    th_render_options_init(&options);
    options.coords = pixels ? TH_COORDS_PIXELS : TH_COORDS_NORMALISED;
    options.reference = relative ? drive : NULL; /* the driver's first frame */
    frame_bytes = (size_t)info.resolution * (size_t)info.resolution * 3;
    out = (uint8_t *)malloc(frame_bytes * (size_t)batch);
    if (!out) goto done;
    for (i = 0; i < frames; i += batch) {
        int n = frames - i < batch ? frames - i : batch, k;
        if (th_render(model, avatar, drive + (size_t)i * FACE_FLOATS, n, &options, out, frame_bytes * (size_t)n) != TH_OK) {
            fprintf(stderr, "render failed at frame %d: %s\n", i, th_last_error());
            goto done;
        }
        for (k = 0; k < n; ++k) {
            if (!write_frame(out_dir, i + k, out + (size_t)k * frame_bytes, info.resolution)) goto done;
        }
    }
    printf("wrote %d frames to %s\n", frames, out_dir);
    rc = 0;
done:
    free(out);
    free(drive);
    for (i = 0; i < shots; ++i) free(images[i].rgb);
    th_avatar_destroy(avatar);
    th_model_destroy(model);
    return rc;
}
