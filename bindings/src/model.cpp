#include "model.h"

#include <algorithm>
#include <cstring>
#include <mutex>
#include <new>

#include "errors.h"
#include "motion.h"
#include "ort_api.h"
#include "ort_runtime.h"
#include "platform.h"
#include "references.h"
#include "watermark.h"

namespace th {
namespace {

// Per-call work buffers; pooled so concurrent renders never share one and a warm pool never
// allocates.
struct Workspace {
  std::vector<float> landmarks;  // [chunk][136]
  std::vector<float> identity;   // [chunk][D]
  std::vector<float> images;     // [chunk][3][R][R]
};

class WorkspacePool {
 public:
  std::unique_ptr<Workspace> acquire() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (free_.empty()) return std::unique_ptr<Workspace>(new Workspace());
    std::unique_ptr<Workspace> ws = std::move(free_.back());
    free_.pop_back();
    return ws;
  }
  void release(std::unique_ptr<Workspace> ws) {
    std::lock_guard<std::mutex> lock(mutex_);
    free_.push_back(std::move(ws));
  }

 private:
  std::mutex mutex_;
  std::vector<std::unique_ptr<Workspace>> free_;
};

struct Lease {
  WorkspacePool& pool;
  std::unique_ptr<Workspace> ws;
  explicit Lease(WorkspacePool& p) : pool(p), ws(p.acquire()) {}
  ~Lease() { pool.release(std::move(ws)); }
};

std::string base_name(const std::string& path) {
  std::size_t s = path.find_last_of('/');
  return s == std::string::npos ? path : path.substr(s + 1);
}

const char* element_type_name(ONNXTensorElementDataType t) {
  switch (t) {
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT: return "float32";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16: return "float16";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64: return "int64";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32: return "int32";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8: return "uint8";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8: return "int8";
    default: return "other";
  }
}

struct Graph {
  std::unique_ptr<Ort::Session> session;
  std::vector<std::string> input_names, output_names;
  std::vector<const char*> inputs, outputs;  // c_str() views of the names
};

// package.check_session_io: role stamp, then input/output names, dtypes and shapes.
void check_session_io(const Ort::Session& s, const GraphSpec& g, const VariantSpec* v, const std::string& file) {
  Ort::AllocatorWithDefaultOptions alloc;
  Ort::ModelMetadata meta = s.GetModelMetadata();
  auto lookup = [&](const char* key) -> std::string {
    Ort::AllocatedStringPtr p = meta.LookupCustomMetadataMapAllocated(key, alloc);
    return p ? "'" + std::string(p.get()) + "'" : "None";
  };
  const std::string role = lookup("talkinghead.role");
  if (role != "'" + g.role + "'") {
    throw Error(Code::ModelPackage, file + ": the graph is stamped talkinghead.role=" + role +
                                        ", the manifest lists it as the '" + g.role + "' graph");
  }
  if (v && lookup("talkinghead.variant") != "'" + v->name + "'") {
    throw Error(Code::ModelPackage, file + ": the graph is stamped talkinghead.variant=" +
                                        lookup("talkinghead.variant") + ", the manifest lists it as variant '" +
                                        v->name + "'");
  }
  for (int out = 0; out < 2; ++out) {
    const std::vector<TensorSpec>& want = out ? g.outputs : g.inputs;
    const std::string kind = out ? "outputs" : "inputs";
    const std::size_t count = out ? s.GetOutputCount() : s.GetInputCount();
    std::vector<std::string> names;
    for (std::size_t i = 0; i < count; ++i) {
      Ort::AllocatedStringPtr n = out ? s.GetOutputNameAllocated(i, alloc) : s.GetInputNameAllocated(i, alloc);
      names.emplace_back(n.get());
    }
    std::vector<std::string> want_names;
    for (const auto& t : want) want_names.push_back(t.name);
    if (names != want_names) {
      auto j = [](const std::vector<std::string>& v) {
        std::string o = "[";
        for (std::size_t i = 0; i < v.size(); ++i) o += (i ? ", '" : "'") + v[i] + "'";
        return o + "]";
      };
      throw Error(Code::ModelPackage, file + ": the graph's " + kind + " are " + j(names) + ", the manifest says " + j(want_names));
    }
    for (std::size_t i = 0; i < count; ++i) {
      Ort::TypeInfo ti = out ? s.GetOutputTypeInfo(i) : s.GetInputTypeInfo(i);
      if (ti.GetONNXType() != ONNX_TYPE_TENSOR) {
        throw Error(Code::ModelPackage, file + ": " + want[i].name + " is not a tensor");
      }
      auto info = ti.GetTensorTypeAndShapeInfo();
      const std::string dtype = element_type_name(info.GetElementType());
      if (dtype != want[i].dtype) {
        throw Error(Code::ModelPackage, file + ": " + kind.substr(0, kind.size() - 1) + " '" + want[i].name + "' is " +
                                            dtype + " in the graph, " + want[i].dtype + " in the manifest");
      }
      std::vector<int64_t> shape = info.GetShape();
      bool ok = shape.size() == want[i].shape.size();
      for (std::size_t d = 0; ok && d < shape.size(); ++d) {
        const Dim& w = want[i].shape[d];
        ok = w.named ? shape[d] < 0 : shape[d] == w.value;
      }
      if (!ok) {
        std::string got = "[";
        for (std::size_t d = 0; d < shape.size(); ++d) got += (d ? ", " : "") + (shape[d] < 0 ? std::string("None") : std::to_string(shape[d]));
        throw Error(Code::ModelPackage, file + ": " + kind.substr(0, kind.size() - 1) + " '" + want[i].name +
                                            "' has shape " + got + "] in the graph, which does not match the manifest "
                                            "(names are dynamic axes)");
      }
    }
  }
}

}  // namespace

struct Model::Impl {
  Package package;
  ModelConfig config;
  Provider provider = Provider::Cpu;
  std::string variant = "fp32";
  std::string warning;
  Graph embedder, generator;
  // A pointer, not a member object: an Ort:: object's destructor needs the API, which is absent
  // when loading ONNX Runtime failed.
  std::unique_ptr<Ort::MemoryInfo> cpu;
  mutable WorkspacePool pool;
  std::unique_ptr<Marker> marker;  // null when the watermark is off

  Ort::SessionOptions options(bool cuda) const {
    Ort::SessionOptions so;
    so.SetIntraOpNumThreads(config.intra_op_threads);
    so.SetInterOpNumThreads(config.inter_op_threads);
    so.SetGraphOptimizationLevel(GraphOptimizationLevel::ORT_ENABLE_ALL);
    so.SetLogSeverityLevel(3);
    if (!config.allow_spinning) so.AddConfigEntry("session.intra_op.allow_spinning", "0");
    if (cuda) {
      OrtCUDAProviderOptionsV2* cuda_options = nullptr;
      Ort::ThrowOnError(Ort::GetApi().CreateCUDAProviderOptions(&cuda_options));
      std::unique_ptr<OrtCUDAProviderOptionsV2, void (*)(OrtCUDAProviderOptionsV2*)> holder(
          cuda_options, Ort::GetApi().ReleaseCUDAProviderOptions);
      const std::string device = std::to_string(config.device_id);
      const char* keys[] = {"device_id"};
      const char* values[] = {device.c_str()};
      Ort::ThrowOnError(Ort::GetApi().UpdateCUDAProviderOptions(cuda_options, keys, values, 1));
      so.AppendExecutionProvider_CUDA_V2(*cuda_options);
    }
    return so;
  }

  Graph open(const std::string& role, const std::string& variant_name, bool cuda) const {
    const std::string& path = package.graph_path(role, variant_name);
    Graph g;
    try {
      g.session.reset(new Ort::Session(ort_env(), platform::native_path(path).c_str(), options(cuda)));
    } catch (const Ort::Exception& e) {
      throw Error(cuda ? Code::Provider : Code::ModelPackage,
                  base_name(path) + ": onnxruntime cannot load this graph" + (cuda ? " on CUDA" : "") + " (" + e.what() + ")");
    }
    const VariantSpec* v = nullptr;
    auto it = package.manifest.variants.find(variant_name);
    if (it != package.manifest.variants.end()) v = &it->second;
    check_session_io(*g.session, package.manifest.graphs.at(role), v, base_name(path));
    const GraphSpec& spec = package.manifest.graphs.at(role);
    for (const auto& t : spec.inputs) g.input_names.push_back(t.name);
    for (const auto& t : spec.outputs) g.output_names.push_back(t.name);
    for (const auto& n : g.input_names) g.inputs.push_back(n.c_str());
    for (const auto& n : g.output_names) g.outputs.push_back(n.c_str());
    return g;
  }

  std::string pick_variant(bool cuda) const {
    std::string v = config.variant.empty() ? "auto" : config.variant;
    if (v == "auto") v = (cuda && package.manifest.variants.count("fp16")) ? "fp16" : "fp32";
    package.graph_path("generator", v);  // throws when the package has no such variant
    return v;
  }

  void open_all(bool cuda) {
    variant = pick_variant(cuda);
    if (!package.manifest.personalised()) embedder = open("embedder", "fp32", cuda);
    generator = open("generator", variant, cuda);
    provider = cuda ? Provider::Cuda : Provider::Cpu;
  }

  void run(const Graph& g, const Ort::Value* in, std::size_t n_in, Ort::Value& out) const {
    try {
      Ort::RunOptions ro{nullptr};
      g.session->Run(ro, g.inputs.data(), in, n_in, g.outputs.data(), &out, 1);
    } catch (const Ort::Exception& e) {
      throw Error(Code::Runtime, std::string("onnxruntime failed to run the graph: ") + e.what());
    }
  }
};

Model::Model() : impl_(new Impl()) {}
Model::~Model() = default;

std::unique_ptr<Model> Model::load(const std::string& folder, const ModelConfig& config) {
  if (config.device_id < 0) throw Error(Code::InvalidArgument, "device_id must be >= 0");
  std::unique_ptr<Model> m(new Model());
  Impl& d = *m->impl_;
  d.config = config;
  d.config.intra_op_threads = clamp_threads(config.intra_op_threads, "intra_op_threads");
  d.config.inter_op_threads = clamp_threads(config.inter_op_threads, "inter_op_threads");
  d.package = load_package(folder, config.verify_hashes);
  if (config.watermark) d.marker = std::make_unique<Marker>(watermark_model_id(d.package.manifest.name, d.package.manifest.version));
  ensure_ort(config.ort_library);
  d.cpu.reset(new Ort::MemoryInfo(Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault)));

  bool want_cuda = config.provider != Provider::Cpu;
  if (want_cuda) {
    std::vector<std::string> available;
    try {
      available = Ort::GetAvailableProviders();
    } catch (const Ort::Exception&) {
    }
    bool has_cuda = std::find(available.begin(), available.end(), "CUDAExecutionProvider") != available.end();
    if (!has_cuda) {
      std::string list;
      for (const auto& a : available) list += (list.empty() ? "" : ", ") + a;
      std::string why = "this ONNX Runtime (" + loaded_ort()->path + ") has no CUDA execution provider (it has " + list +
                        "); use a GPU build of ONNX Runtime (onnxruntime-gpu) for CUDA";
      if (config.provider == Provider::Cuda) throw Error(Code::Provider, why);
      want_cuda = false;
      if (config.provider == Provider::Auto) {
        d.warning = why + "; running on the CPU";
        log(LogLevel::Info, d.warning);  // auto on a CPU-only runtime is normal: not a warning
      }
    }
  }
  if (want_cuda) {
    try {
      d.open_all(true);
    } catch (const Error& e) {
      if (config.provider == Provider::Cuda || e.code() != Code::Provider) throw;
      d.warning = std::string("CUDA was not usable, running on the CPU: ") + e.what();
      log(LogLevel::Warning, d.warning);
      d.embedder = Graph();
      d.generator = Graph();
      d.open_all(false);
    } catch (const Ort::Exception& e) {
      if (config.provider == Provider::Cuda) throw Error(Code::Provider, std::string("CUDA is not usable: ") + e.what());
      d.warning = std::string("CUDA was not usable, running on the CPU: ") + e.what();
      log(LogLevel::Warning, d.warning);
      d.embedder = Graph();
      d.generator = Graph();
      d.open_all(false);
    }
  } else {
    d.open_all(false);
  }
  return m;
}

const Manifest& Model::manifest() const { return impl_->package.manifest; }
const std::string& Model::folder() const { return impl_->package.folder; }
int Model::resolution() const { return impl_->package.manifest.resolution; }
int Model::embedding_dim() const { return impl_->package.manifest.embedding_dim; }
bool Model::personalised() const { return impl_->package.manifest.personalised(); }
bool Model::warp() const { return impl_->package.manifest.warp(); }
Provider Model::provider() const { return impl_->provider; }
const std::string& Model::variant() const { return impl_->variant; }
const std::string& Model::warning() const { return impl_->warning; }
CropRule Model::crop_rule() const {
  return CropRule{impl_->package.manifest.crop_scale, impl_->package.manifest.crop_offset_y};
}

void Model::embed(const float* images, const float* landmarks, int n, float* out) const {
  const Impl& d = *impl_;
  if (!d.embedder.session) throw Error(Code::InvalidArgument, "a personalised model has no embedder");
  const int64_t r = resolution(), dim = embedding_dim();
  const int64_t ishape[] = {n, 3, r, r}, lshape[] = {n, 68, 2}, oshape[] = {n, dim};
  Ort::Value in[2] = {
      Ort::Value::CreateTensor<float>(*d.cpu, const_cast<float*>(images), static_cast<size_t>(n * 3 * r * r), ishape, 4),
      Ort::Value::CreateTensor<float>(*d.cpu, const_cast<float*>(landmarks), static_cast<size_t>(n) * kLandmarkFloats, lshape, 3)};
  Ort::Value o = Ort::Value::CreateTensor<float>(*d.cpu, out, static_cast<size_t>(n * dim), oshape, 2);
  d.run(d.embedder, in, 2, o);
}

void Model::generate(const float* landmarks, const float* identity_rows, int b, float* out, const float* ref_images,
                     const float* ref_landmarks, int k) const {
  const Impl& d = *impl_;
  const Manifest& m = manifest();
  const int64_t r = resolution(), dim = embedding_dim(), s = m.reference_resolution;
  if (warp() && (!ref_images || !ref_landmarks || k < 1 || k > m.reference_cap)) {
    throw Error(Code::InvalidArgument, "model '" + m.name + "' (family 'warp') needs 1 to " +
                                           std::to_string(m.reference_cap) + " reference shots, got " + std::to_string(k));
  }
  if (!warp() && (ref_images || ref_landmarks || k)) {
    throw Error(Code::InvalidArgument, "model '" + m.name + "' (family '" + m.family + "') takes no reference shots");
  }
  const int64_t lshape[] = {b, 68, 2}, idshape[] = {b, dim}, oshape[] = {b, 3, r, r};
  const int64_t rishape[] = {k, 3, s, s}, rlshape[] = {k, 68, 2};
  std::vector<Ort::Value> in;
  in.reserve(4);
  in.push_back(Ort::Value::CreateTensor<float>(*d.cpu, const_cast<float*>(landmarks), static_cast<size_t>(b) * kLandmarkFloats, lshape, 3));
  if (!personalised()) {
    in.push_back(Ort::Value::CreateTensor<float>(*d.cpu, const_cast<float*>(identity_rows), static_cast<size_t>(b * dim), idshape, 2));
  }
  if (warp()) {
    in.push_back(Ort::Value::CreateTensor<float>(*d.cpu, const_cast<float*>(ref_images), static_cast<size_t>(k * 3 * s * s), rishape, 4));
    in.push_back(Ort::Value::CreateTensor<float>(*d.cpu, const_cast<float*>(ref_landmarks), static_cast<size_t>(k) * kLandmarkFloats, rlshape, 3));
  }
  Ort::Value o = Ort::Value::CreateTensor<float>(*d.cpu, out, static_cast<size_t>(b * 3 * r * r), oshape, 4);
  d.run(d.generator, in.data(), in.size(), o);
}

void to_model_input(const std::uint8_t* crops, int n, int r, float* out) {
  const std::size_t plane = static_cast<std::size_t>(r) * r;
  for (int k = 0; k < n; ++k) {
    const std::uint8_t* src = crops + k * plane * 3;
    float* dst = out + k * plane * 3;
    for (std::size_t p = 0; p < plane; ++p) {
      for (int c = 0; c < 3; ++c) dst[c * plane + p] = static_cast<float>(src[3 * p + c]) / 127.5f - 1.0f;
    }
  }
}

void to_uint8_hwc(const float* images, int b, int r, std::uint8_t* out) {
  const std::size_t plane = static_cast<std::size_t>(r) * r;
  for (int k = 0; k < b; ++k) {
    const float* src = images + k * plane * 3;
    std::uint8_t* dst = out + k * plane * 3;
    for (std::size_t p = 0; p < plane; ++p) {
      for (int c = 0; c < 3; ++c) {
        float v = (src[c * plane + p] + 1.0f) * 127.5f + 0.5f;
        dst[3 * p + c] = v >= 0.0f ? (v < 255.0f ? static_cast<std::uint8_t>(v) : 255) : 0;  // NaN -> 0
      }
    }
  }
}

Avatar Model::create_avatar(const ImageView* shots, const float* landmarks_px, int count) const {
  if (personalised()) {
    throw Error(Code::InvalidArgument, "model '" + manifest().name + "' is personalised (its identity is baked in): it "
                                       "needs no avatar; render with a NULL avatar");
  }
  if (!shots || !landmarks_px) throw Error(Code::InvalidArgument, "shots and landmarks must not be NULL");
  check_shot_count(count);
  const int r = resolution();
  const std::size_t plane = static_cast<std::size_t>(r) * r;
  std::vector<std::uint8_t> crops(plane * 3 * count);
  std::vector<float> norm(static_cast<std::size_t>(kLandmarkFloats) * count);
  std::vector<Crop> boxes(count);
  WarpScratch scratch;
  for (int i = 0; i < count; ++i) {
    const std::string what = "shot " + std::to_string(i);
    check_image(shots[i], what.c_str());
    const float* lm = landmarks_px + static_cast<std::size_t>(i) * kLandmarkFloats;
    check_landmark_values(lm, kLandmarkFloats, ("landmarks of " + what).c_str());
    boxes[i] = crop_from_landmarks(lm, crop_rule());
    warp_to_crop(shots[i], boxes[i], r, crops.data() + i * plane * 3, scratch);
    to_normalised(lm, kNumLandmarks, boxes[i], norm.data() + static_cast<std::size_t>(i) * kLandmarkFloats);
  }
  std::vector<float> input(plane * 3 * count);
  to_model_input(crops.data(), count, r, input.data());
  const int dim = embedding_dim();
  std::vector<float> emb(static_cast<std::size_t>(dim) * count);
  embed(input.data(), norm.data(), count, emb.data());
  Avatar a;
  a.identity.assign(emb.begin(), emb.begin() + dim);  // float32 sum over shots, then / n (numpy's mean)
  for (int i = 1; i < count; ++i) {
    for (int k = 0; k < dim; ++k) a.identity[k] += emb[static_cast<std::size_t>(i) * dim + k];
  }
  for (int k = 0; k < dim; ++k) a.identity[k] /= static_cast<float>(count);
  check_finite(a.identity.data(), a.identity.size(), "the identity (embedder output)");
  a.has_source = true;
  std::copy(norm.begin(), norm.begin() + kLandmarkFloats, a.source.begin());
  a.crop = boxes[0];
  a.shots = count;
  if (warp()) add_references(a, shots, boxes, crops, norm);
  return a;
}

// The reference shots of a 'warp' avatar, as talkinghead.Model.create_avatar keeps them.
void Model::add_references(Avatar& a, const ImageView* shots, const std::vector<Crop>& boxes,
                           const std::vector<std::uint8_t>& crops, const std::vector<float>& norm) const {
  const Manifest& m = manifest();
  const int r = resolution(), s = m.reference_resolution;
  const std::vector<int> keep = select_references(norm.data(), a.shots, m.reference_cap);
  const std::size_t plane = static_cast<std::size_t>(s) * s;
  std::vector<std::uint8_t> resampled;
  WarpScratch scratch;
  if (s != r) resampled.resize(plane * 3);  // sharper references: from the photos, at their own side
  a.references = static_cast<int>(keep.size());
  a.ref_resolution = s;
  a.ref_images.resize(plane * 3 * keep.size());
  a.ref_landmarks.resize(static_cast<std::size_t>(kLandmarkFloats) * keep.size());
  for (std::size_t j = 0; j < keep.size(); ++j) {
    const int i = keep[j];
    const std::uint8_t* crop = crops.data() + static_cast<std::size_t>(i) * plane * 3;
    if (s != r) {
      warp_to_crop(shots[i], boxes[i], s, resampled.data(), scratch);
      crop = resampled.data();
    }
    to_model_input(crop, 1, s, a.ref_images.data() + j * plane * 3);
    std::copy(norm.begin() + static_cast<std::ptrdiff_t>(i) * kLandmarkFloats,
              norm.begin() + static_cast<std::ptrdiff_t>(i + 1) * kLandmarkFloats,
              a.ref_landmarks.begin() + static_cast<std::ptrdiff_t>(j) * kLandmarkFloats);
  }
}

Avatar Model::avatar_from_identity(const float* identity, int dim, const float* source) const {
  if (warp()) {
    throw Error(Code::InvalidArgument, "model '" + manifest().name + "' (family 'warp') renders from the avatar's "
                                       "reference shots, which an identity alone does not carry: make the avatar "
                                       "from the shots (th_avatar_create)");
  }
  Avatar a;
  if (!personalised()) {
    if (!identity) throw Error(Code::InvalidArgument, "identity must not be NULL");
    if (dim != embedding_dim()) {
      throw Error(Code::SizeMismatch, "identity has " + std::to_string(dim) + " values; model '" + manifest().name +
                                          "' needs " + std::to_string(embedding_dim()) + " (made by another model?)");
    }
    check_finite(identity, static_cast<std::size_t>(dim), "identity");
    a.identity.assign(identity, identity + dim);
  }
  if (source) {
    check_finite(source, kLandmarkFloats, "source landmarks");
    check_face_in_crop(source, 1, 0, "source landmarks");
    std::copy(source, source + kLandmarkFloats, a.source.begin());
    a.has_source = true;
  }
  return a;
}


void Model::render(const Avatar* avatar, const float* landmarks, int batch, const RenderOptions& opt,
                   std::uint8_t* out, std::size_t out_size) const {
  const Impl& d = *impl_;
  const int r = resolution(), dim = embedding_dim();
  if (!landmarks || !out) throw Error(Code::InvalidArgument, "landmarks and out must not be NULL");
  if (batch < 1) throw Error(Code::InvalidArgument, "batch must be >= 1, got " + std::to_string(batch));
  if (batch > kMaxRenderFrames) {
    throw Error(Code::InvalidArgument, "th_render takes 1 to " + std::to_string(kMaxRenderFrames) +
                                           " frames per call, got " + std::to_string(batch) + "; call it in chunks");
  }
  const std::size_t frame_bytes = static_cast<std::size_t>(r) * r * 3;
  if (out_size < frame_bytes * batch) {
    throw Error(Code::SizeMismatch, "out holds " + std::to_string(out_size) + " bytes; " + std::to_string(batch) +
                                        " frames of " + std::to_string(r) + "x" + std::to_string(r) + " RGB8 need " +
                                        std::to_string(frame_bytes * batch));
  }
  if (!personalised()) {
    if (!avatar) throw Error(Code::InvalidArgument, "avatar must not be NULL (model '" + manifest().name + "' is not personalised)");
    if (static_cast<int>(avatar->identity.size()) != dim) {
      throw Error(Code::SizeMismatch, "avatar identity has " + std::to_string(avatar->identity.size()) + " dims; model '" +
                                          manifest().name + "' needs " + std::to_string(dim) + " (made by another model?)");
    }
    const std::size_t ref_floats = static_cast<std::size_t>(manifest().reference_resolution) *
                                   manifest().reference_resolution * 3 * avatar->references;
    if (warp() && (avatar->references < 1 || avatar->references > manifest().reference_cap ||
                   avatar->ref_resolution != manifest().reference_resolution || avatar->ref_images.size() != ref_floats ||
                   avatar->ref_landmarks.size() != static_cast<std::size_t>(kLandmarkFloats) * avatar->references)) {
      throw Error(Code::InvalidArgument, "model '" + manifest().name + "' (family 'warp') renders from the avatar's "
                                         "reference shots, and this avatar has none for it (made by another model?)");
    }
  }
  const bool relative = opt.reference != nullptr;
  if (relative && (!avatar || !avatar->has_source)) {
    throw Error(Code::InvalidArgument, "relative motion needs an avatar with source landmarks (made from shots, or "
                                       "given source landmarks)");
  }
  if (opt.pixels && relative && opt.crops) {
    throw Error(Code::InvalidArgument, "relative motion frames the driver by its reference's crop: pass "
                                       "reference_crop, not crops");
  }
  if (!opt.pixels && (opt.crops || opt.reference_crop)) {
    throw Error(Code::InvalidArgument, "crops and reference_crop apply to pixel coordinates only");
  }
  check_landmark_values(landmarks, static_cast<std::size_t>(batch) * kLandmarkFloats, "landmarks");
  if (relative) check_landmark_values(opt.reference, kLandmarkFloats, "reference landmarks");
  if (opt.crops) {
    for (int i = 0; i < batch; ++i) check_crop(Crop{opt.crops[3 * i], opt.crops[3 * i + 1], opt.crops[3 * i + 2]}, "crops");
  }

  Lease lease(d.pool);
  Workspace& ws = *lease.ws;
  const int chunk = std::min(batch, kRenderChunk);
  // Grow once to the largest chunk seen; a warm workspace never allocates.
  if (ws.landmarks.size() < static_cast<std::size_t>(chunk) * kLandmarkFloats) ws.landmarks.resize(static_cast<std::size_t>(chunk) * kLandmarkFloats);
  if (!personalised() && ws.identity.size() < static_cast<std::size_t>(chunk) * dim) {
    ws.identity.resize(static_cast<std::size_t>(chunk) * dim);
  }
  if (ws.images.size() < static_cast<std::size_t>(chunk) * 3 * r * r) ws.images.resize(static_cast<std::size_t>(chunk) * 3 * r * r);

  // Relative motion (talkinghead.motion.MotionTransfer): the driver in its reference's crop.
  MotionTransfer motion;
  if (relative) {
    const Crop given = opt.reference_crop ? Crop{opt.reference_crop[0], opt.reference_crop[1], opt.reference_crop[2]}
                                          : Crop{};
    motion.set_reference(opt.reference, opt.pixels, crop_rule(), opt.reference_crop ? &given : nullptr,
                         avatar->source.data());
  }

  for (int start = 0; start < batch; start += chunk) {
    const int n = std::min(chunk, batch - start);
    for (int i = 0; i < n; ++i) {
      const float* src = landmarks + static_cast<std::size_t>(start + i) * kLandmarkFloats;
      float* dst = ws.landmarks.data() + static_cast<std::size_t>(i) * kLandmarkFloats;
      if (relative) {
        motion.apply(src, true, dst);
      } else if (opt.pixels) {
        Crop c;
        if (opt.crops) {
          const double* cr = opt.crops + 3 * static_cast<std::size_t>(start + i);
          c = Crop{cr[0], cr[1], cr[2]};
        } else {
          // crops_from_landmarks (batched) returns float32 crops: round the same way.
          Crop f = crop_from_landmarks(src, crop_rule());
          c = Crop{static_cast<float>(f.cx), static_cast<float>(f.cy), static_cast<float>(f.size)};
          check_crop(c, "crop");
        }
        to_normalised(src, kNumLandmarks, c, dst);
      } else {
        std::copy(src, src + kLandmarkFloats, dst);
      }
      if (!personalised()) {
        std::copy(avatar->identity.begin(), avatar->identity.end(), ws.identity.begin() + static_cast<std::ptrdiff_t>(i) * dim);
      }
    }
    check_face_in_crop(ws.landmarks.data(), n, start, "landmarks");
    if (warp()) {
      generate(ws.landmarks.data(), ws.identity.data(), n, ws.images.data(), avatar->ref_images.data(),
               avatar->ref_landmarks.data(), avatar->references);
    } else {
      generate(ws.landmarks.data(), personalised() ? nullptr : ws.identity.data(), n, ws.images.data());
    }
    to_uint8_hwc(ws.images.data(), n, r, out + static_cast<std::size_t>(start) * frame_bytes);
    if (d.marker) {
      for (int i = 0; i < n; ++i) d.marker->mark(out + static_cast<std::size_t>(start + i) * frame_bytes, r, r);
    }
  }
}

}  // namespace th
