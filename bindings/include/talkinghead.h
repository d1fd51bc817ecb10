/*
 * talkinghead.h — the C ABI of the talkinghead native core (few-shot neural talking heads).
 *
 * One header, plain C (C99), for engines and any language with a C FFI (Unity P/Invoke, Unreal,
 * custom engines). The library is a C++17 core on ONNX Runtime; nothing C++ crosses this boundary.
 *
 * USAGE
 *   th_model *model = NULL;
 *   if (th_model_load("models/default", NULL, &model) != TH_OK) {
 *       fprintf(stderr, "%s\n", th_last_error());  // what failed and what to do
 *       return 1;
 *   }
 *   th_image shots[1] = {{rgb, width, height, width * 3, (size_t)width * height * 3}};
 *   th_avatar *avatar = NULL;
 *   th_avatar_create(model, shots, landmarks_px, 1, &avatar);     // 68 (x, y) pixels per shot
 *   th_model_info info; th_model_info_init(&info); th_model_get_info(model, &info);
 *   uint8_t *out = malloc((size_t)frames * info.resolution * info.resolution * 3);
 *   th_render(model, avatar, driving_landmarks, frames, NULL, out, out_size);
 *   th_avatar_destroy(avatar);
 *   th_model_destroy(model);
 *
 * COORDINATES (docs/architecture.md)
 *   Landmarks are 68 iBUG points, (x, y) float pairs, x right, y down. Pixel coordinates have
 *   pixel centres at integers. Crop-normalised coordinates span [-1, 1] over the square face crop
 *   (cx, cy, size): u = (x - cx) / (size / 2). The crop of a face is derived from its landmarks by
 *   the crop rule of the manifest (scale, offset_y); the core does exactly what the Python SDK
 *   (talkinghead.crop) does.
 *
 * IMAGES
 *   RGB8, row-major, 3 bytes per pixel, `stride` bytes between rows (>= 3 * width). Rendered
 *   frames are tightly packed RGB8 crops of resolution x resolution pixels, one after the other.
 *
 * LIMITS (the Python SDK's talkinghead.limits; each is an error naming the value, never a clamp,
 * except thread counts)
 *   Landmarks: finite, |x|, |y| <= 1e6. The crop-normalised face each frame renders from (after
 *   the crop rule or relative motion): every point within +-4 crop half-widths and a face larger
 *   than 1e-3 of the crop. th_render: 1..4096 frames per call (run 8 at a time inside). Shots:
 *   1..32, each at most 64 MP. intra_op_threads / inter_op_threads above the machine's cores are
 *   lowered to them, with a warning on the log.
 *
 * ERRORS
 *   Every fallible call returns a th_status; TH_OK is 0. On failure th_last_error() returns a
 *   message for the calling thread (valid until that thread's next call into the library). The
 *   library never aborts or exits, and no C++ exception escapes it.
 *
 * OWNERSHIP
 *   Every handle made by a *_create / *_load call is released by its *_destroy call; destroy
 *   accepts NULL; on failure the out-handle is set to NULL. The library keeps a table of its live
 *   handles: a handle passed after its destroy (or one it never made) gets
 *   TH_ERROR_INVALID_ARGUMENT ("not a live ... handle"), and a second destroy is ignored with a
 *   warning on the log. Handles are serial numbers, not addresses, and never issued twice in a
 *   process, so a stale handle can never name a newer object. A call that is running keeps its
 *   objects alive until it returns, even if another thread destroys them meanwhile. A stream
 *   whose model or avatar was destroyed refuses th_stream_push the same way. An avatar holds only its own data (no
 *   pointer into its model), so avatars and models may be destroyed in any order. Input buffers
 *   are read during the call only and never kept. Strings returned by the library are owned by
 *   it: th_model_info's strings live as long as the model.
 *
 * THREADING
 *   A th_model may be shared by any number of threads: th_render, th_avatar_create and
 *   th_model_get_info may run concurrently on one model (ONNX Runtime sessions are thread-safe;
 *   the core keeps a pool of per-call work buffers, so talkinghead allocates nothing per frame
 *   once warm; ONNX Runtime uses its own arena). A th_avatar is immutable after creation and may
 *   be shared too. th_model_destroy must not run concurrently with other calls on the same model.
 *   th_set_log_callback is global; the callback may be called from any thread, one at a time.
 *
 * ONNX RUNTIME
 *   The library loads ONNX Runtime at run time (dlopen; LoadLibrary on Windows) the first time a
 *   model is loaded, from, in order: th_model_config.ort_library, the TALKINGHEAD_ORT_LIBRARY
 *   environment variable, libonnxruntime.so next to this library, then the system search path
 *   (libonnxruntime.so, libonnxruntime.so.1); on Windows onnxruntime.dll, next to talkinghead.dll
 *   and then on the DLL search path. Paths are UTF-8 on every platform. Any ONNX Runtime >= 1.29 works (CPU or GPU build). Telemetry is off:
 *   ORT_DISABLE_TELEMETRY=1 is set unless already set, and telemetry events are disabled.
 */
#ifndef TALKINGHEAD_H
#define TALKINGHEAD_H

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#  if defined(TALKINGHEAD_BUILDING)
#    define TH_API __declspec(dllexport)
#  elif defined(TALKINGHEAD_STATIC)
#    define TH_API
#  else
#    define TH_API __declspec(dllimport)
#  endif
#else
#  define TH_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

/** Version of this ABI. Bumped on any incompatible change; structs only grow at the end.
 *  2: th_image carries `size` (the bytes readable from `data`); handles are checked (below). */
#define TH_ABI_VERSION 2

/** Number of landmarks per face (iBUG 68). */
#define TH_NUM_LANDMARKS 68
/** Most shots an avatar may be made from. */
#define TH_MAX_SHOTS 32

typedef enum th_status {
    TH_OK = 0,
    TH_ERROR_INVALID_ARGUMENT = 1, /**< a NULL pointer, a bad size, NaN or infinite landmarks... */
    TH_ERROR_SIZE_MISMATCH = 2,    /**< a buffer or dimension does not match what is needed */
    TH_ERROR_NOT_FOUND = 3,        /**< a file or folder does not exist */
    TH_ERROR_MODEL_PACKAGE = 4,    /**< manifest invalid, hash mismatch, corrupt or wrong graph */
    TH_ERROR_RUNTIME = 5,          /**< ONNX Runtime could not be loaded or failed while running */
    TH_ERROR_PROVIDER = 6,         /**< an execution provider asked for explicitly is unusable */
    TH_ERROR_OUT_OF_MEMORY = 7,
    TH_ERROR_INTERNAL = 8          /**< a bug: please report it with the message */
} th_status;

typedef enum th_log_level {
    TH_LOG_DEBUG = 0,
    TH_LOG_INFO = 1,
    TH_LOG_WARNING = 2,
    TH_LOG_ERROR = 3
} th_log_level;

typedef enum th_provider {
    TH_PROVIDER_AUTO = 0, /**< CUDA when this ONNX Runtime has it and it works, else CPU (warns) */
    TH_PROVIDER_CPU = 1,
    TH_PROVIDER_CUDA = 2  /**< CUDA or fail with TH_ERROR_PROVIDER */
} th_provider;

typedef enum th_coords {
    TH_COORDS_NORMALISED = 0, /**< crop-normalised, [-1, 1] over the crop */
    TH_COORDS_PIXELS = 1      /**< pixels of the frame the landmarks were found in */
} th_coords;

typedef struct th_model th_model;   /**< a loaded model package (sessions, manifest) */
typedef struct th_avatar th_avatar; /**< an identity: vector + source landmarks */
typedef struct th_stream th_stream; /**< live state of one avatar: motion reference, smoothing, controls */

/** An RGB8 image the caller owns (at most 64 MP). */
typedef struct th_image {
    const uint8_t *data;
    int32_t width;
    int32_t height;
    int32_t stride; /**< bytes between the starts of two rows; >= 3 * width */
    size_t size;    /**< bytes readable from `data`: >= stride * (height - 1) + 3 * width, else
                         TH_ERROR_SIZE_MISMATCH (the library never reads past it) */
} th_image;

/** Options of th_model_load. Zero-initialise, or call th_model_config_init. */
typedef struct th_model_config {
    uint32_t struct_size;     /**< sizeof(th_model_config); 0 is taken as this version's size */
    th_provider provider;
    int32_t device_id;        /**< CUDA device */
    int32_t intra_op_threads; /**< 0: ONNX Runtime's default (all cores) */
    int32_t inter_op_threads; /**< 0: default */
    const char *variant;      /**< NULL or "auto": fp16 on CUDA when present, else fp32;
                                   "fp32", "int8", "fp16", or any variant name in the manifest */
    const char *ort_library;  /**< path of libonnxruntime; NULL: see ONNX RUNTIME above */
    int32_t skip_hash_check;  /**< nonzero: do not verify sha256 (faster load; not recommended) */
    int32_t no_spinning;      /**< nonzero: intra-op threads sleep between runs instead of spinning:
                                   less idle CPU for a game's other threads, ~20% slower frames
                                   (bench/ort_settings.py); 0: spin (ONNX Runtime's default) */
    int32_t no_watermark;     /**< nonzero: rendered frames are left unmarked. By default every frame
                                   th_render and th_stream_push return carries the invisible mark of
                                   the package (the Python SDK's talkinghead.watermark; found by
                                   `talkinghead verify`), so a video made with it can be told apart */
} th_model_config;

/** What a loaded model is. */
typedef struct th_model_info {
    uint32_t struct_size;       /**< sizeof(th_model_info), set by th_model_info_init */
    int32_t resolution;         /**< output crops are resolution x resolution RGB8 */
    int32_t embedding_dim;      /**< length of an identity vector */
    int32_t personalised;       /**< nonzero: identity baked in; avatars are optional */
    th_provider provider;       /**< the provider actually running (CPU or CUDA) */
    double crop_scale;          /**< the crop rule of the package */
    double crop_offset_y;
    const char *name;           /**< owned by the model */
    const char *variant;        /**< the generator file in use, e.g. "fp32"; owned by the model */
    const char *warning;        /**< "" or why the requested provider was not used; owned */
    const char *ort_version;    /**< version of the ONNX Runtime library in use */
    /** The generator family: "adain" (landmarks + identity: the paper's generator) or "warp"
     *  (moves the avatar's own reference shots along a motion field; th_avatar_create keeps up to
     *  reference_cap of them, chosen by the manifest's selection rule). Owned by the model. */
    const char *family;
    int32_t reference_cap;      /**< "warp": shots an avatar keeps; 0 for "adain" */
} th_model_info;

/** Options of th_render. Zero-initialise, or call th_render_options_init. */
typedef struct th_render_options {
    uint32_t struct_size;   /**< sizeof(th_render_options); 0 is taken as this version's size */
    th_coords coords;       /**< coordinates of `landmarks` (and of `reference`) */
    /** TH_COORDS_PIXELS only: per-frame crops (cx, cy, size) [batch][3] in pixels (doubles, as
     *  the SDK's Crop), or NULL to derive each frame's crop from its landmarks by the crop rule.
     *  Give a fixed crop to keep head translation; the crop rule re-centres every frame. */
    const double *crops;
    /** Relative motion: NULL for absolute (landmarks drive the face as they are), or the
     *  driver's reference landmarks [68][2] (usually its first frame), in `coords`. */
    const float *reference;
    /** TH_COORDS_PIXELS only: the reference's crop (cx, cy, size), or NULL for the crop rule. */
    const double *reference_crop;
} th_render_options;

/** Expression and pose controls of a stream (talkinghead.Controls); th_controls_init sets the
 *  defaults, each of which changes nothing. Edits of the transferred landmarks, per frame. */
typedef struct th_controls {
    uint32_t struct_size;  /**< sizeof(th_controls); 0 is taken as this version's size */
    double eye_open;       /**< [0, 2]: factor on each eye's opening (0 closes, 1 leaves) */
    double mouth_open;     /**< [-0.1, 0.4]: added jaw drop, in face sizes */
    double smile;          /**< [-1, 1]: mouth corners out and up (> 0) or in and down */
    double yaw;            /**< [-45, 45] degrees: > 0 turns the nose towards the image's right */
    double pitch;          /**< [-30, 30] degrees: > 0 lifts it */
    double roll;           /**< [-45, 45] degrees: > 0 turns the face clockwise on screen */
    int32_t expression_only; /**< nonzero: the avatar's head stays still; only expression transfers */
} th_controls;

/** Options of th_stream_create. Zero-initialise, or call th_stream_options_init. */
typedef struct th_stream_options {
    uint32_t struct_size;  /**< sizeof(th_stream_options); 0 is taken as this version's size */
    int32_t absolute;      /**< nonzero: absolute motion (the avatar takes the driver's face shape);
                                0: relative (default: the driver's motion since its first frame) */
    int32_t no_smoothing;  /**< nonzero: no One Euro smoothing of the pushed landmarks */
} th_stream_options;

/* ---- library ---------------------------------------------------------------------------- */

/** TH_ABI_VERSION of the library actually loaded; compare with the header's. */
TH_API uint32_t th_abi_version(void);
/** Version of the library, e.g. "0.1.0". */
TH_API const char *th_version(void);
/** Message of the last failed call on this thread ("" if none). */
TH_API const char *th_last_error(void);
/** A short constant name of a status, e.g. "TH_ERROR_NOT_FOUND". */
TH_API const char *th_status_string(th_status status);

/** Log messages (provider fallbacks, ONNX Runtime loading) go to `fn` from any thread; NULL
 *  restores the default (warnings and errors to stderr). Messages below `min_level` are dropped. */
typedef void (*th_log_fn)(void *user_data, th_log_level level, const char *message);
TH_API void th_set_log_callback(th_log_fn fn, void *user_data, th_log_level min_level);

/* ---- model ------------------------------------------------------------------------------ */

TH_API void th_model_config_init(th_model_config *config);
/** Load and verify a model package folder (manifest.json + graphs). config may be NULL. */
TH_API th_status th_model_load(const char *package_dir, const th_model_config *config,
                               th_model **out_model);
TH_API void th_model_destroy(th_model *model);
TH_API void th_model_info_init(th_model_info *info);
TH_API th_status th_model_get_info(const th_model *model, th_model_info *info);

/* ---- avatar ----------------------------------------------------------------------------- */

/** Embed `count` shots (1..TH_MAX_SHOTS) of one person: images and their landmarks in pixels
 *  [count][68][2]. The identity is the mean of the shots' embeddings. The avatar keeps the first
 *  shot's crop-normalised landmarks as the source face for relative motion. A "warp" model's
 *  avatar also keeps up to th_model_info.reference_cap shots (their crops and landmarks): all of
 *  them when count <= the cap, else the most varied (farthest-landmarks rule, as the SDK). */
TH_API th_status th_avatar_create(th_model *model, const th_image *shots,
                                  const float *landmarks_px, int32_t count,
                                  th_avatar **out_avatar);
/** An avatar from a stored identity vector (e.g. one the Python SDK saved) and optionally the
 *  source face's crop-normalised landmarks [68][2] (NULL: no relative motion). Not for a "warp"
 *  model, which renders from the shots themselves: TH_ERROR_INVALID_ARGUMENT (use
 *  th_avatar_create). */
TH_API th_status th_avatar_from_identity(const th_model *model, const float *identity,
                                         int32_t dim, const float *source_landmarks,
                                         th_avatar **out_avatar);
TH_API void th_avatar_destroy(th_avatar *avatar);
/** Copy the identity vector into `out` (capacity floats, >= embedding_dim). */
TH_API th_status th_avatar_get_identity(const th_avatar *avatar, float *out, int32_t capacity);
/** Copy the source face's crop-normalised landmarks [68][2] into `out` (136 floats). */
TH_API th_status th_avatar_get_source_landmarks(const th_avatar *avatar, float *out);

/* ---- render ----------------------------------------------------------------------------- */

TH_API void th_render_options_init(th_render_options *options);
/** Render `batch` frames: landmarks [batch][68][2] -> RGB8 crops into `out` (out_size bytes,
 *  >= batch * resolution * resolution * 3). `avatar` may be NULL for a personalised model.
 *  options may be NULL (crop-normalised landmarks, absolute motion). Thread-safe. */
TH_API th_status th_render(th_model *model, const th_avatar *avatar, const float *landmarks,
                           int32_t batch, const th_render_options *options, uint8_t *out,
                           size_t out_size);

/* ---- stream (live: one frame in, one frame out) ------------------------------------------ */

/** A stream keeps, between pushes, what live driving needs: the motion reference (the first
 *  pushed face), One Euro smoothing of the landmarks on their timestamps (in face sizes, the
 *  Python SDK's talkinghead.stream.LandmarkSmoother) and the controls. Python's
 *  model.stream(avatar).push(landmarks, t) gives the same frames (tests/bindings).
 *  THREADING: a stream is used by one thread at a time; any number of streams may render on one
 *  model concurrently. The model and the avatar must outlive the stream (it copies neither).
 *  After th_stream_destroy the handle is gone: do not pass it again. */
TH_API void th_controls_init(th_controls *controls);
TH_API void th_stream_options_init(th_stream_options *options);
/** `avatar` may be NULL only for a personalised model with absolute motion. options may be NULL. */
TH_API th_status th_stream_create(th_model *model, const th_avatar *avatar,
                                  const th_stream_options *options, th_stream **out_stream);
TH_API void th_stream_destroy(th_stream *stream);
/** Replace the controls (validated: a value out of range is TH_ERROR_INVALID_ARGUMENT, and the
 *  stream keeps its previous controls). NULL restores the defaults. */
TH_API th_status th_stream_set_controls(th_stream *stream, const th_controls *controls);
/** Render one frame: the driver's landmarks [68][2] in `coords` (pixels of the driving frame, or
 *  crop-normalised), taken at `timestamp` seconds (finite, strictly increasing), into one
 *  resolution x resolution RGB8 crop (out_size >= resolution * resolution * 3). */
TH_API th_status th_stream_push(th_stream *stream, const float *landmarks, th_coords coords,
                                double timestamp, uint8_t *out, size_t out_size);
/** Forget the motion reference and the smoothing: the next push becomes the new reference. */
TH_API th_status th_stream_reset(th_stream *stream);
/** Counters since creation: pushes, frames rendered, pushes that failed (any may be NULL). */
TH_API th_status th_stream_get_stats(const th_stream *stream, int64_t *pushed, int64_t *rendered,
                                     int64_t *failed);

/* ---- geometry (the crop rule and paste-back, for engines that paste frames back) ------- */

/** The crop (cx, cy, size) of a face from its landmarks in pixels, by the model's crop rule. */
TH_API th_status th_crop_from_landmarks(const th_model *model, const float *landmarks_px,
                                        double out_crop[3]);
/** Pixels -> crop-normalised coordinates of `count` points under one crop. */
TH_API th_status th_to_normalised(const float *points_px, int32_t count, const double crop[3],
                                  float *out_points);
/** Crop-normalised -> pixel coordinates of `count` points under one crop. */
TH_API th_status th_to_pixels(const float *points_norm, int32_t count, const double crop[3],
                              float *out_points);

/** The SDK's paste-back feather (talkinghead.pasteback.DEFAULT_FEATHER). */
#define TH_DEFAULT_FEATHER 0.12
/** Paste a rendered crop back into a frame (talkinghead.pasteback.paste_back): `out` (the frame's
 *  layout: frame->stride bytes per row, out_size >= frame->size; it may be frame->data itself, to
 *  paste in place) receives the frame with `crop_rgb` (resolution x resolution packed RGB8, the
 *  model's output for `crop`: cx, cy, size in the frame's pixels, e.g. from th_crop_from_landmarks)
 *  blended in. Frame pixels whose centres lie in the crop square change, under a mask that falls
 *  smoothly to 0 over `feather` (0..0.5; TH_DEFAULT_FEATHER) of the crop's side at its border; a
 *  crop outside the frame changes nothing. Equal to Python's paste_back within one level. */
TH_API th_status th_paste_back(const th_image *frame, const uint8_t *crop_rgb, int32_t resolution,
                               const double crop[3], double feather, uint8_t *out, size_t out_size);

#ifdef __cplusplus
}
#endif

#endif /* TALKINGHEAD_H */
