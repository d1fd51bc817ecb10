// One input of each C++ fuzz target, run as the fuzzer runs it: shared by tests/fuzz/fuzz_native.cpp
// (libFuzzer) and tests/bindings/test_core.cpp (which replays tests/fuzz/crashes/native_*).
// Each returns normally or throws th::Error; anything else is a bug.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "geometry.h"
#include "input_limits.h"
#include "manifest.h"

namespace th_fuzz {

inline void manifest(const std::uint8_t* data, std::size_t size) {
  th::parse_manifest(std::string(reinterpret_cast<const char*>(data), size));
}

inline void onnx(const std::uint8_t* data, std::size_t size) {
  static const std::string path =
      (std::filesystem::temp_directory_path() / ("th_fuzz_onnx_" + std::to_string(std::random_device{}()) + ".onnx"))
          .u8string();
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return;
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  th::read_onnx_header(path);
}

// [w:u16][h:u16][stride pad:u8][resolution:u8][136 floats of landmarks][pixels...]: an image view
// of any size and stride over the bytes, landmarks from the bytes, the crop rule, the face bounds
// and the crop warp (the C ABI's shot path without ONNX Runtime).
inline void shot(const std::uint8_t* data, std::size_t size) {
  if (size < 6 + 136 * sizeof(float)) return;
  std::uint16_t w, h;
  std::memcpy(&w, data, 2);
  std::memcpy(&h, data + 2, 2);
  const int pad = data[4], res = 1 + data[5] % 128;
  float lm[136];
  std::memcpy(lm, data + 6, sizeof lm);
  const std::uint8_t* pixels = data + 6 + sizeof lm;
  const std::size_t npix = size - 6 - sizeof lm;
  th::ImageView img{pixels, w % 512, h % 512, (w % 512) * 3 + pad, npix};
  th::check_landmark_values(lm, 136, "landmarks");
  const th::Crop crop = th::crop_from_landmarks(lm, th::CropRule{});
  std::vector<float> norm(136);
  th::to_normalised(lm, 68, crop, norm.data());
  th::check_face_in_crop(norm.data(), 1, 0, "landmarks");
  th::check_image(img, "shot");
  std::vector<std::uint8_t> out(static_cast<std::size_t>(res) * res * 3);
  th::WarpScratch scratch;
  th::warp_to_crop(img, crop, res, out.data(), scratch);
}

}  // namespace th_fuzz
