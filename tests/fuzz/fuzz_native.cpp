// libFuzzer targets of the C++ core's readers of untrusted bytes (issue 18), built three times by
// tests/fuzz/run.sh with -fsanitize=fuzzer,address,undefined and one of:
//   FUZZ_MANIFEST  th::parse_manifest (manifest.json text -> Manifest)
//   FUZZ_ONNX      th::read_onnx_header (an ONNX file's top-level fields)
//   FUZZ_SHOT      the C ABI's shot path without ONNX Runtime: an image view of any size and stride
//                  over the bytes, landmarks from the bytes, the crop rule, the crop warp and the
//                  face bounds (the C++ side of "a user's photo and landmarks")
// A crash is anything but a th::Error: an escaped exception of another type, a sanitizer report,
// a timeout or running out of memory.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "errors.h"
#include "geometry.h"
#include "input_limits.h"
#include "manifest.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
#if defined(FUZZ_MANIFEST)
  try {
    th::parse_manifest(std::string(reinterpret_cast<const char*>(data), size));
  } catch (const th::Error&) {
  }
#elif defined(FUZZ_ONNX)
  static const std::string path = "/tmp/fuzz_onnx_" + std::to_string(::getpid()) + ".onnx";
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return 0;
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  try {
    th::read_onnx_header(path);
  } catch (const th::Error&) {
  }
#elif defined(FUZZ_SHOT)
  // [w:u16][h:u16][stride pad:u8][resolution:u8][136 floats of landmarks][pixels...]
  if (size < 6 + 136 * sizeof(float)) return 0;
  std::uint16_t w, h;
  std::memcpy(&w, data, 2);
  std::memcpy(&h, data + 2, 2);
  const int pad = data[4], res = 1 + data[5] % 128;
  float lm[136];
  std::memcpy(lm, data + 6, sizeof lm);
  const std::uint8_t* pixels = data + 6 + sizeof lm;
  const std::size_t npix = size - 6 - sizeof lm;
  th::ImageView img{pixels, w % 512, h % 512, (w % 512) * 3 + pad, npix};
  try {
    th::check_landmark_values(lm, 136, "landmarks");
    const th::Crop crop = th::crop_from_landmarks(lm, th::CropRule{});
    std::vector<float> norm(136);
    th::to_normalised(lm, 68, crop, norm.data());
    th::check_face_in_crop(norm.data(), 1, 0, "landmarks");
    th::check_image(img, "shot");
    std::vector<std::uint8_t> out(static_cast<std::size_t>(res) * res * 3);
    th::WarpScratch scratch;
    th::warp_to_crop(img, crop, res, out.data(), scratch);
  } catch (const th::Error&) {
  }
#else
#error "define FUZZ_MANIFEST, FUZZ_ONNX or FUZZ_SHOT"
#endif
  return 0;
}
