// The C ABI (bindings/include/talkinghead.h) over the core. Every entry point catches everything:
// no exception crosses the boundary; failures set the thread-local last error.
#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <unordered_map>

#include "errors.h"
#include "geometry.h"
#include "model.h"
#include "ort_runtime.h"
#include "stream.h"
#include "talkinghead.h"

struct th_model {
  std::unique_ptr<th::Model> core;
  std::string ort_version;
};

struct th_avatar {
  th::Avatar core;
};

struct th_stream {
  std::unique_ptr<th::Stream> core;
  std::weak_ptr<th_model> model;    // the stream holds references into both: each push locks them
  std::weak_ptr<th_avatar> avatar;  // and refuses once either was destroyed
  bool has_avatar = false;
};

static_assert(th::kMaxShots == TH_MAX_SHOTS, "the header's shot limit is the core's");

namespace {

thread_local std::string t_last_error;

th_status set_error(th_status status, const std::string& message) {
  t_last_error = message;
  return status;
}

template <typename F>
th_status guard(F&& body) {
  try {
    t_last_error.clear();
    body();
    return TH_OK;
  } catch (const th::Error& e) {
    return set_error(static_cast<th_status>(static_cast<int>(e.code())), e.what());
  } catch (const std::bad_alloc&) {
    return set_error(TH_ERROR_OUT_OF_MEMORY, "out of memory");
  } catch (const std::exception& e) {
    return set_error(TH_ERROR_INTERNAL, std::string("internal error: ") + e.what());
  } catch (...) {
    return set_error(TH_ERROR_INTERNAL, "internal error: unknown exception");
  }
}

[[noreturn]] void invalid(const std::string& message) { throw th::Error(th::Code::InvalidArgument, message); }

// Handle values: one counter for the three types (a value is never issued twice in a process).
std::uintptr_t next_serial() {
  static std::atomic<std::uintptr_t> serial{0};
  return ++serial;
}

// The live handles of one type. A handle is not the object's address but a serial number that is
// never issued twice in a process (shared by the three types, tagged in its low bits), so a handle
// kept after its destroy is refused even when the allocator has reused that memory for a new object;
// a second destroy is ignored. Each call holds its object through a shared_ptr, so a destroy from
// another thread frees it only after that call returns. Never destroyed (no static destruction order
// issue).
template <typename T>
class Registry {
 public:
  Registry(const char* type, std::uintptr_t tag) : type_(type), tag_(tag) {}
  // Takes ownership of `object` and returns its new handle.
  T* add(std::unique_ptr<T> object) {
    std::lock_guard<std::mutex> lock(mu_);
    const std::uintptr_t key = (next_serial() << kTagBits) | tag_;
    live_.emplace(key, std::shared_ptr<T>(std::move(object)));
    return reinterpret_cast<T*>(key);
  }
  // The object behind a live handle, or an empty pointer.
  std::shared_ptr<T> find(const T* handle) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = live_.find(reinterpret_cast<std::uintptr_t>(handle));
    return it == live_.end() ? nullptr : it->second;
  }
  // The object behind `handle`; throws InvalidArgument unless it is non-NULL and live (`name`: the
  // argument's name).
  std::shared_ptr<T> get(const T* handle, const char* name) const {
    if (!handle) invalid(std::string(name) + " must not be NULL");
    std::shared_ptr<T> object = find(handle);
    if (!object) {
      invalid(std::string(name) + " is not a live " + type_ + " handle (destroyed already, or not made by this library)");
    }
    return object;
  }
  // Destroy `handle` if live; NULL is a no-op; anything else is logged and ignored.
  void destroy(const T* handle) {
    if (!handle) return;
    std::shared_ptr<T> object;  // released after the lock, outside it
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = live_.find(reinterpret_cast<std::uintptr_t>(handle));
      if (it != live_.end()) {
        object = std::move(it->second);
        live_.erase(it);
      }
    }
    if (!object) th::log(th::LogLevel::Warning, std::string(type_) + "_destroy: not a live handle (destroyed twice?); ignored");
  }

 private:
  static constexpr int kTagBits = 2;
  const char* type_;
  const std::uintptr_t tag_;
  mutable std::mutex mu_;
  std::unordered_map<std::uintptr_t, std::shared_ptr<T>> live_;
};

Registry<th_model>& models() {
  static auto* r = new Registry<th_model>("th_model", 1);
  return *r;
}
Registry<th_avatar>& avatars() {
  static auto* r = new Registry<th_avatar>("th_avatar", 2);
  return *r;
}
Registry<th_stream>& streams() {
  static auto* r = new Registry<th_stream>("th_stream", 3);
  return *r;
}

// Copy a caller's versioned struct: unknown (newer) fields are ignored, missing ones default.
template <typename T>
T read_struct(const T* in, void (*init)(T*)) {
  T out;
  init(&out);
  if (!in) return out;
  uint32_t size = in->struct_size;
  if (size == 0 || size > sizeof(T)) size = sizeof(T);
  if (size < sizeof(uint32_t)) invalid("struct_size is too small");
  std::memcpy(&out, in, size);
  out.struct_size = sizeof(T);
  return out;
}

th::Crop crop_of(const double* c) { return th::Crop{c[0], c[1], c[2]}; }

// A C enum field may hold any int; loading an out-of-range value as the C++ enum type is
// undefined, so read the bits as an integer first.
template <typename E>
int enum_value(const E& e) {
  static_assert(sizeof(E) == sizeof(int), "C enums are int-sized here");
  int v;
  std::memcpy(&v, &e, sizeof v);
  return v;
}

}  // namespace

extern "C" {

uint32_t th_abi_version(void) { return TH_ABI_VERSION; }

const char* th_version(void) { return TALKINGHEAD_VERSION; }

const char* th_last_error(void) { return t_last_error.c_str(); }

const char* th_status_string(th_status status_in) {
  switch (enum_value(status_in)) {
    case TH_OK: return "TH_OK";
    case TH_ERROR_INVALID_ARGUMENT: return "TH_ERROR_INVALID_ARGUMENT";
    case TH_ERROR_SIZE_MISMATCH: return "TH_ERROR_SIZE_MISMATCH";
    case TH_ERROR_NOT_FOUND: return "TH_ERROR_NOT_FOUND";
    case TH_ERROR_MODEL_PACKAGE: return "TH_ERROR_MODEL_PACKAGE";
    case TH_ERROR_RUNTIME: return "TH_ERROR_RUNTIME";
    case TH_ERROR_PROVIDER: return "TH_ERROR_PROVIDER";
    case TH_ERROR_OUT_OF_MEMORY: return "TH_ERROR_OUT_OF_MEMORY";
    case TH_ERROR_INTERNAL: return "TH_ERROR_INTERNAL";
  }
  return "TH_UNKNOWN_STATUS";
}

void th_set_log_callback(th_log_fn fn, void* user_data, th_log_level min_level) {
  th::set_log_callback(reinterpret_cast<th::LogFn>(fn), user_data, static_cast<th::LogLevel>(min_level));
}

void th_model_config_init(th_model_config* config) {
  if (!config) return;
  std::memset(config, 0, sizeof(*config));
  config->struct_size = sizeof(*config);
  config->provider = TH_PROVIDER_AUTO;
}

th_status th_model_load(const char* package_dir, const th_model_config* config, th_model** out_model) {
  return guard([&] {
    if (!out_model) invalid("out_model must not be NULL");
    *out_model = nullptr;
    if (!package_dir) invalid("package_dir must not be NULL");
    th_model_config c = read_struct(config, th_model_config_init);
    th::ModelConfig mc;
    const int provider = enum_value(c.provider);
    switch (provider) {
      case TH_PROVIDER_AUTO: mc.provider = th::Provider::Auto; break;
      case TH_PROVIDER_CPU: mc.provider = th::Provider::Cpu; break;
      case TH_PROVIDER_CUDA: mc.provider = th::Provider::Cuda; break;
      default: invalid("unknown provider " + std::to_string(provider));
    }
    mc.device_id = c.device_id;
    mc.intra_op_threads = c.intra_op_threads;
    mc.inter_op_threads = c.inter_op_threads;
    mc.variant = c.variant ? c.variant : "auto";
    mc.ort_library = c.ort_library ? c.ort_library : "";
    mc.verify_hashes = c.skip_hash_check == 0;
    mc.allow_spinning = c.no_spinning == 0;
    mc.watermark = c.no_watermark == 0;
    auto m = std::make_unique<th_model>();
    m->core = th::Model::load(package_dir, mc);
    const th::OrtInfo* ort = th::loaded_ort();
    m->ort_version = ort ? ort->version : "";
    *out_model = models().add(std::move(m));
  });
}

void th_model_destroy(th_model* model) { models().destroy(model); }

void th_model_info_init(th_model_info* info) {
  if (!info) return;
  std::memset(info, 0, sizeof(*info));
  info->struct_size = sizeof(*info);
}

th_status th_model_get_info(const th_model* model, th_model_info* info) {
  return guard([&] {
    const auto held = models().get(model, "model");
    if (!info) invalid("info must not be NULL");
    th_model_info out;
    th_model_info_init(&out);
    const th::Model& m = *held->core;
    out.resolution = m.resolution();
    out.embedding_dim = m.embedding_dim();
    out.personalised = m.personalised() ? 1 : 0;
    out.provider = m.provider() == th::Provider::Cuda ? TH_PROVIDER_CUDA : TH_PROVIDER_CPU;
    out.crop_scale = m.crop_rule().scale;
    out.crop_offset_y = m.crop_rule().offset_y;
    out.name = m.manifest().name.c_str();
    out.variant = m.variant().c_str();
    out.warning = m.warning().c_str();
    out.ort_version = held->ort_version.c_str();
    out.family = m.manifest().family.c_str();
    out.reference_cap = m.manifest().reference_cap;
    uint32_t size = info->struct_size;
    if (size == 0 || size > sizeof(out)) size = sizeof(out);
    std::memcpy(info, &out, size);
    info->struct_size = size;
  });
}

th_status th_avatar_create(th_model* model, const th_image* shots, const float* landmarks_px, int32_t count,
                           th_avatar** out_avatar) {
  return guard([&] {
    if (!out_avatar) invalid("out_avatar must not be NULL");
    *out_avatar = nullptr;
    const auto held = models().get(model, "model");
    if (!shots || !landmarks_px) invalid("shots and landmarks_px must not be NULL");
    th::check_shot_count(count);
    th::ImageView views[TH_MAX_SHOTS];
    for (int i = 0; i < count; ++i) {
      views[i] = th::ImageView{shots[i].data, shots[i].width, shots[i].height, shots[i].stride, shots[i].size};
    }
    auto a = std::make_unique<th_avatar>();
    a->core = held->core->create_avatar(views, landmarks_px, count);
    *out_avatar = avatars().add(std::move(a));
  });
}

th_status th_avatar_from_identity(const th_model* model, const float* identity, int32_t dim,
                                  const float* source_landmarks, th_avatar** out_avatar) {
  return guard([&] {
    if (!out_avatar) invalid("out_avatar must not be NULL");
    *out_avatar = nullptr;
    const auto held = models().get(model, "model");
    auto a = std::make_unique<th_avatar>();
    a->core = held->core->avatar_from_identity(identity, dim, source_landmarks);
    *out_avatar = avatars().add(std::move(a));
  });
}

void th_avatar_destroy(th_avatar* avatar) { avatars().destroy(avatar); }

th_status th_avatar_get_identity(const th_avatar* avatar, float* out, int32_t capacity) {
  return guard([&] {
    const auto held = avatars().get(avatar, "avatar");
    if (!out) invalid("out must not be NULL");
    const auto& id = held->core.identity;
    if (capacity < static_cast<int32_t>(id.size())) {
      throw th::Error(th::Code::SizeMismatch, "capacity " + std::to_string(capacity) + " < identity size " +
                                                  std::to_string(id.size()));
    }
    std::copy(id.begin(), id.end(), out);
  });
}

th_status th_avatar_get_source_landmarks(const th_avatar* avatar, float* out) {
  return guard([&] {
    const auto held = avatars().get(avatar, "avatar");
    if (!out) invalid("out must not be NULL");
    if (!held->core.has_source) invalid("this avatar has no source landmarks");
    std::copy(held->core.source.begin(), held->core.source.end(), out);
  });
}

void th_render_options_init(th_render_options* options) {
  if (!options) return;
  std::memset(options, 0, sizeof(*options));
  options->struct_size = sizeof(*options);
  options->coords = TH_COORDS_NORMALISED;
}

th_status th_render(th_model* model, const th_avatar* avatar, const float* landmarks, int32_t batch,
                    const th_render_options* options, uint8_t* out, size_t out_size) {
  return guard([&] {
    const auto held_model = models().get(model, "model");
    const auto held_avatar = avatar ? avatars().get(avatar, "avatar") : nullptr;
    th_render_options o = read_struct(options, th_render_options_init);
    const int coords = enum_value(o.coords);
    if (coords != TH_COORDS_NORMALISED && coords != TH_COORDS_PIXELS) {
      invalid("unknown coords " + std::to_string(coords));
    }
    th::RenderOptions ro;
    ro.pixels = coords == TH_COORDS_PIXELS;
    ro.crops = o.crops;
    ro.reference = o.reference;
    ro.reference_crop = o.reference_crop;
    held_model->core->render(held_avatar ? &held_avatar->core : nullptr, landmarks, batch, ro, out, out_size);
  });
}

void th_controls_init(th_controls* controls) {
  if (!controls) return;
  std::memset(controls, 0, sizeof(*controls));
  controls->struct_size = sizeof(*controls);
  controls->eye_open = 1.0;
}

void th_stream_options_init(th_stream_options* options) {
  if (!options) return;
  std::memset(options, 0, sizeof(*options));
  options->struct_size = sizeof(*options);
}

th_status th_stream_create(th_model* model, const th_avatar* avatar, const th_stream_options* options,
                           th_stream** out_stream) {
  return guard([&] {
    if (!out_stream) invalid("out_stream must not be NULL");
    *out_stream = nullptr;
    const auto held_model = models().get(model, "model");
    const auto held_avatar = avatar ? avatars().get(avatar, "avatar") : nullptr;
    th_stream_options o = read_struct(options, th_stream_options_init);
    th::StreamOptions so;
    so.relative = o.absolute == 0;
    so.smoothing = o.no_smoothing == 0;
    auto s = std::make_unique<th_stream>();
    s->core = std::make_unique<th::Stream>(*held_model->core, held_avatar ? &held_avatar->core : nullptr, so);
    s->model = held_model;
    s->avatar = held_avatar;
    s->has_avatar = held_avatar != nullptr;
    *out_stream = streams().add(std::move(s));
  });
}

void th_stream_destroy(th_stream* stream) { streams().destroy(stream); }

th_status th_stream_set_controls(th_stream* stream, const th_controls* controls) {
  return guard([&] {
    const auto held = streams().get(stream, "stream");
    th_controls c = read_struct(controls, th_controls_init);
    th::Controls tc;
    tc.eye_open = c.eye_open;
    tc.mouth_open = c.mouth_open;
    tc.smile = c.smile;
    tc.yaw = c.yaw;
    tc.pitch = c.pitch;
    tc.roll = c.roll;
    tc.expression_only = c.expression_only != 0;
    held->core->set_controls(tc);
  });
}

th_status th_stream_push(th_stream* stream, const float* landmarks, th_coords coords, double timestamp, uint8_t* out,
                         size_t out_size) {
  return guard([&] {
    const auto held = streams().get(stream, "stream");
    const auto held_model = held->model.lock();
    const auto held_avatar = held->avatar.lock();
    if (!held_model || (held->has_avatar && !held_avatar)) {
      invalid("this stream's model or avatar was destroyed; destroy the stream first");
    }
    const int c = enum_value(coords);
    if (c != TH_COORDS_NORMALISED && c != TH_COORDS_PIXELS) invalid("unknown coords " + std::to_string(c));
    held->core->push(landmarks, c == TH_COORDS_PIXELS, timestamp, out, out_size);
  });
}

th_status th_stream_reset(th_stream* stream) {
  return guard([&] {
    streams().get(stream, "stream")->core->reset();
  });
}

th_status th_stream_get_stats(const th_stream* stream, int64_t* pushed, int64_t* rendered, int64_t* failed) {
  return guard([&] {
    const auto held = streams().get(stream, "stream");
    const th::StreamStats& st = held->core->stats();
    if (pushed) *pushed = st.pushed;
    if (rendered) *rendered = st.rendered;
    if (failed) *failed = st.failed;
  });
}

th_status th_crop_from_landmarks(const th_model* model, const float* landmarks_px, double out_crop[3]) {
  return guard([&] {
    const auto held = models().get(model, "model");
    if (!landmarks_px || !out_crop) invalid("landmarks_px and out_crop must not be NULL");
    th::Crop c = th::crop_from_landmarks(landmarks_px, held->core->crop_rule());
    out_crop[0] = c.cx;
    out_crop[1] = c.cy;
    out_crop[2] = c.size;
  });
}

th_status th_to_normalised(const float* points_px, int32_t count, const double crop[3], float* out_points) {
  return guard([&] {
    if (!points_px || !crop || !out_points) invalid("points, crop and out must not be NULL");
    if (count < 0) invalid("count must be >= 0");
    th::check_finite(points_px, static_cast<std::size_t>(count) * 2, "points");
    th::check_crop(crop_of(crop), "crop");
    th::to_normalised(points_px, count, crop_of(crop), out_points);
  });
}

th_status th_to_pixels(const float* points_norm, int32_t count, const double crop[3], float* out_points) {
  return guard([&] {
    if (!points_norm || !crop || !out_points) invalid("points, crop and out must not be NULL");
    if (count < 0) invalid("count must be >= 0");
    th::check_finite(points_norm, static_cast<std::size_t>(count) * 2, "points");
    th::check_crop(crop_of(crop), "crop");
    th::to_pixels(points_norm, count, crop_of(crop), out_points);
  });
}

th_status th_paste_back(const th_image* frame, const uint8_t* crop_rgb, int32_t resolution, const double crop[3],
                        double feather, uint8_t* out, size_t out_size) {
  return guard([&] {
    if (!frame || !crop_rgb || !crop || !out) invalid("frame, crop_rgb, crop and out must not be NULL");
    th::PasteScratch scratch;
    th::paste_back(th::ImageView{frame->data, frame->width, frame->height, frame->stride, frame->size}, crop_rgb,
                   resolution, crop_of(crop), feather, out, out_size, scratch);
  });
}

}  // extern "C"
