// The core: a loaded model package on ONNX Runtime, avatars and rendering.
// Shared by the C ABI (c_api.cpp) and the Python module (bindings/python/module.cpp).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "geometry.h"
#include "input_limits.h"
#include "manifest.h"

namespace th {


enum class Provider { Auto = 0, Cpu = 1, Cuda = 2 };

struct ModelConfig {
  Provider provider = Provider::Auto;
  int device_id = 0;
  int intra_op_threads = 0;  // 0: ONNX Runtime's default
  int inter_op_threads = 0;
  std::string variant = "auto";  // "auto" | "fp32" | a variant name in the manifest
  std::string ort_library;       // "" : search (ort_runtime.h)
  bool verify_hashes = true;
  bool allow_spinning = true;  // false: intra-op threads sleep between runs (less idle CPU, slower)
  bool watermark = true;       // rendered frames carry the invisible mark of the package (watermark.h)
};

// An identity: the mean embedding of the shots, and the source face (first shot) for relative
// motion. Immutable once made; shareable across threads.
struct Avatar {
  std::vector<float> identity;  // [D]; empty for a personalised model
  bool has_source = false;
  std::array<float, kLandmarkFloats> source{};  // crop-normalised [68][2]
  Crop crop;                                    // the first shot's crop in its pixels
  int shots = 0;
  // A 'warp' model's reference shots (references.h picks them when there are more than the
  // cap): crops float [K][3][S][S] in [-1, 1] and their crop-normalised landmarks [K][68][2].
  int references = 0;
  int ref_resolution = 0;  // S
  std::vector<float> ref_images;
  std::vector<float> ref_landmarks;
};

struct RenderOptions {
  bool pixels = false;                // landmarks in pixels (else crop-normalised)
  const double* crops = nullptr;      // pixels, absolute motion: [batch][3], or null (crop rule)
  const float* reference = nullptr;   // relative motion: the driver's reference [68][2]
  const double* reference_crop = nullptr;  // pixels: the reference's crop, or null (crop rule)
};

class Model {
 public:
  static std::unique_ptr<Model> load(const std::string& folder, const ModelConfig& config);
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const Manifest& manifest() const;
  const std::string& folder() const;
  int resolution() const;
  int embedding_dim() const;
  bool personalised() const;
  bool warp() const;  // family 'warp': renders from the avatar's reference shots
  Provider provider() const;        // what runs: Cpu or Cuda
  const std::string& variant() const;  // "fp32", "int8", ...
  const std::string& warning() const;  // "" or why the requested provider is not used
  CropRule crop_rule() const;

  // Embed 1..32 shots (RGB8 images + 68 pixel landmarks each) into an avatar. Thread-safe.
  Avatar create_avatar(const ImageView* shots, const float* landmarks_px, int count) const;
  // An avatar from a stored identity (and optional crop-normalised source landmarks); not for a
  // 'warp' model, which needs the shots themselves.
  Avatar avatar_from_identity(const float* identity, int dim, const float* source) const;

  // Render `batch` frames into `out` (batch * R * R * 3 bytes). Thread-safe; allocates nothing
  // per frame once its work buffers are warm. `avatar` may be null for a personalised model.
  void render(const Avatar* avatar, const float* landmarks, int batch, const RenderOptions& options,
              std::uint8_t* out, std::size_t out_size) const;

  // The graphs, exposed for tests and bindings: images [n,3,R,R] in [-1,1] + landmarks -> [n,D].
  void embed(const float* images_nchw, const float* landmarks_norm, int n, float* out) const;
  // landmarks [b,68,2] + identity rows [b,D] (ignored when personalised) -> images [b,3,R,R].
  // A 'warp' model also takes `k` reference shots: ref_images [k,3,S,S] + ref_landmarks [k,68,2].
  void generate(const float* landmarks_norm, const float* identity_rows, int b, float* out,
                const float* ref_images = nullptr, const float* ref_landmarks = nullptr, int k = 0) const;

 private:
  Model();
  void add_references(Avatar& a, const ImageView* shots, const std::vector<Crop>& boxes,
                      const std::vector<std::uint8_t>& crops, const std::vector<float>& norm) const;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Model output [b,3,R,R] in [-1,1] -> uint8 [b,R,R,3]: clip((x + 1) * 127.5 + 0.5, 0, 255)
// truncated, as talkinghead.model.from_model_output.
void to_uint8_hwc(const float* images, int b, int r, std::uint8_t* out);
// Crop images uint8 [n,R,R,3] -> float [n,3,R,R]: u8 / 127.5 - 1 (talkinghead.model.to_model_input).
void to_model_input(const std::uint8_t* crops, int n, int r, float* out);

}  // namespace th
