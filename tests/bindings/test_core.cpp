// The core's internals: SHA-256, the manifest rules (as talkinghead.manifest), and the geometry
// against the pure-Python path's test vectors (talkinghead.crop).
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>

#include "errors.h"
#include "geometry.h"
#include "manifest.h"
#include "motion.h"
#include "references.h"
#include "replay.h"
#include "sha256.h"
#include "test_support.h"

using nlohmann::json;

TEST_CASE("sha256 known answers") {
  CHECK(th::sha256_hex("", 0) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(th::sha256_hex("abc", 3) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const std::string two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  CHECK(th::sha256_hex(two.data(), two.size()) == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  std::string million(1000000, 'a');
  th::Sha256 h;  // in uneven pieces, across block boundaries
  for (std::size_t i = 0; i < million.size(); i += 997) h.update(million.data() + i, std::min<std::size_t>(997, million.size() - i));
  CHECK(h.hex_digest() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_CASE("sha256 of a package file matches its manifest") {
  json m = json::parse(read_text(package_path("model/manifest.json")));
  CHECK(th::sha256_file(package_path("model/generator.onnx")) == m["graphs"]["generator"]["sha256"].get<std::string>());
  CHECK_THROWS_AS(th::sha256_file(package_path("model/missing.onnx")), th::Error);
}

namespace {

json good_manifest() { return json::parse(read_text(package_path("model/manifest.json"))); }

std::string error_of(const json& m) {
  try {
    th::parse_manifest(m.dump());
  } catch (const th::Error& e) {
    CHECK(e.code() == th::Code::ModelPackage);
    return e.what();
  }
  return "";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("manifest: the fixture package is valid") {
  th::Manifest m = th::parse_manifest(good_manifest().dump());
  CHECK(m.kind == "meta");
  CHECK(m.graphs.count("embedder") == 1);
  CHECK(m.resolution == vector_index()["resolution"].get<int>());
  CHECK(m.crop_scale == doctest::Approx(1.7));
  CHECK(m.crop_offset_y == doctest::Approx(-0.1));
  th::Manifest p = th::parse_manifest(read_text(package_path("personalised/manifest.json")));
  CHECK(p.personalised());
}

TEST_CASE("manifest: the SDK's rules") {
  json m = good_manifest();
  SUBCASE("unknown keys are errors at every level") {
    m["extra"] = 1;
    CHECK(contains(error_of(m), "manifest: (top level): unknown key(s) 'extra'"));
    m = good_manifest();
    m["graphs"]["generator"]["inputs"][0]["bogus"] = true;
    CHECK(contains(error_of(m), "graphs.generator.inputs[0]: unknown key(s) 'bogus'"));
    m = good_manifest();
    m["landmarks"]["crop"]["rotate"] = 0;
    CHECK(contains(error_of(m), "landmarks.crop: unknown key(s) 'rotate'"));
  }
  SUBCASE("the crop rule's own bounds: offset_y in (-1, 1), as crop.py (both validators took +-1)") {
    for (double v : {1.0, -1.0, 1.5}) {
      m = good_manifest();
      m["landmarks"]["crop"]["offset_y"] = v;
      CHECK(contains(error_of(m), "landmarks.crop.offset_y: expected a number in (-1, 1)"));
    }
    m = good_manifest();
    m["landmarks"]["crop"]["offset_y"] = 0.99;
    CHECK(error_of(m).empty());
  }
  SUBCASE("a UTF-8 byte-order mark is read, as in Python") {
    CHECK(th::parse_manifest("\xEF\xBB\xBF" + good_manifest().dump()).name == good_manifest()["name"].get<std::string>());
  }
  SUBCASE("parity.pruned: the attention blocks the export left out") {
    REQUIRE(m["parity"].contains("pruned"));  // the fixture's random attention adds nothing
    CHECK(error_of(m).empty());
    m["parity"]["pruned"]["blocks"] = "down_attn.1";
    CHECK(contains(error_of(m), "parity.pruned.blocks: expected an array"));
    m = good_manifest();
    m["parity"]["pruned"]["max_abs"] = -1;
    CHECK(contains(error_of(m), "parity.pruned.max_abs"));
    m = good_manifest();
    m["parity"]["pruned"]["why"] = "x";
    CHECK(contains(error_of(m), "parity.pruned: unknown key(s) 'why'"));
  }
  SUBCASE("quality and speed are free-form") {
    m["quality"] = {{"anything", {1, 2}}};
    m["speed"] = {{"ms", 3.5}};
    CHECK(error_of(m).empty());
  }
  SUBCASE("schema_version 1 and 2") {
    REQUIRE(m["schema_version"] == 2);
    m["schema_version"] = 3;
    CHECK(contains(error_of(m), "schema_version 3 is newer"));
    m = good_manifest();
    m.erase("family");
    CHECK(contains(error_of(m), "family: required key is missing"));
    m["schema_version"] = 1;  // version 1: no family key, the paper's generator
    CHECK(error_of(m).empty());
    m["family"] = "adain";
    CHECK(contains(error_of(m), "unknown key(s) 'family'"));
    m = good_manifest();
    m["family"] = "gan";
    CHECK(contains(error_of(m), "family: expected one of 'adain', 'warp'"));
    m = good_manifest();
    m["references"] = {{"cap", 4}, {"resolution", 64}, {"selection", "farthest-landmarks"}};
    CHECK(contains(error_of(m), "references: only a 'warp' package has references"));
    m["schema_version"] = 0;
    CHECK(contains(error_of(m), "schema_version 0 is not supported"));
    m["schema_version"] = "1";
    CHECK(contains(error_of(m), "schema_version: expected an integer"));
    m.erase("schema_version");
    CHECK(contains(error_of(m), "schema_version: required key is missing"));
  }
  SUBCASE("paths stay inside the package") {
    m["graphs"]["generator"]["file"] = "../generator.onnx";
    CHECK(contains(error_of(m), "leaves the package folder"));
    m["graphs"]["generator"]["file"] = "/tmp/generator.onnx";
    CHECK(contains(error_of(m), "is an absolute path"));
    m["graphs"]["generator"]["file"] = "a//b.onnx";
    CHECK(contains(error_of(m), "empty or '.' path component"));
    m["graphs"]["generator"]["file"] = "a\\b.onnx";
    CHECK(contains(error_of(m), "use '/' as the separator"));
    m["graphs"]["generator"]["file"] = "embedder.onnx";
    CHECK(contains(error_of(m), "is already named by graphs.embedder"));
  }
  SUBCASE("hashes, kinds and shapes") {
    m["graphs"]["generator"]["sha256"] = "ABC";
    CHECK(contains(error_of(m), "graphs.generator.sha256: expected 64 lowercase hex digits"));
    m = good_manifest();
    m["graphs"].erase("embedder");
    CHECK(contains(error_of(m), "a 'meta' package needs its embedder"));
    m = good_manifest();
    m["graphs"]["generator"]["outputs"][0]["shape"][2] = 7;
    CHECK(contains(error_of(m), "graphs.generator.outputs[0].shape[2]: expected"));
    m = good_manifest();
    m["graphs"]["generator"]["inputs"][0]["shape"][0] = 1;
    CHECK(contains(error_of(m), "the batch axis must be dynamic"));
    m = good_manifest();
    m["kind"] = "other";
    CHECK(contains(error_of(m), "kind: expected one of 'meta', 'personalised'"));
    m = good_manifest();
    m["image"]["range"] = json::array({0, 1});
    CHECK(contains(error_of(m), "image.range: expected [-1.0, 1.0]"));
    m = good_manifest();
    m["variants"]["fp32"] = json::object();
    CHECK(contains(error_of(m), "'fp32' names the reference graphs"));
  }
  SUBCASE("not JSON") {
    try {
      th::parse_manifest("{\"schema_version\": 1,");
      FAIL("no error");
    } catch (const th::Error& e) {
      CHECK(contains(e.what(), "not valid JSON"));
    }
  }
}

TEST_CASE("manifest: a 'warp' package's references") {
  const json good = json::parse(read_text(package_path("warp/manifest.json")));
  th::Manifest w = th::parse_manifest(good.dump());
  CHECK(w.warp());
  CHECK(w.reference_cap == vector_index()["warp"]["cap"].get<int>());
  CHECK(w.reference_resolution == 2 * w.resolution);  // shots kept at twice the output side, as the bundled model
  CHECK(w.reference_selection == "farthest-landmarks");
  json m = good;
  m.erase("references");
  CHECK(contains(error_of(m), "references: required key is missing"));
  m = good;
  m["references"]["cap"] = 33;
  CHECK(contains(error_of(m), "references.cap: expected at most 32"));
  m = good;
  m["references"]["resolution"] = w.resolution / 2;
  CHECK(contains(error_of(m), "references.resolution: expected at least the output resolution"));
  m = good;
  m["references"]["selection"] = "first";
  CHECK(contains(error_of(m), "references.selection: expected one of 'farthest-landmarks'"));
  m = good;
  m["graphs"]["generator"]["inputs"].erase(3);
  CHECK(contains(error_of(m), "graphs.generator.inputs: a 'meta' package's generator has inputs"));
}

TEST_CASE("select_references keeps the shots talkinghead.references keeps") {
  const int n = vector_index()["warp"]["shots"].get<int>(), cap = vector_index()["warp"]["cap"].get<int>();
  std::vector<float> norm(static_cast<std::size_t>(n) * 136);
  for (int i = 0; i < n; ++i) {
    auto lm = load_vector<float>("warp_shot" + std::to_string(i) + "_landmarks");
    th::to_normalised(lm.data(), 68, th::crop_from_landmarks(lm.data(), th::CropRule{}), norm.data() + i * 136);
  }
  const std::vector<int> keep = th::select_references(norm.data(), n, cap);
  REQUIRE(static_cast<int>(keep.size()) == cap);
  auto want = load_vector<float>("warp_ref_landmarks");
  double worst = 0;
  for (int j = 0; j < cap; ++j) {
    for (int k = 0; k < 136; ++k) worst = std::max(worst, std::fabs(double(norm[keep[j] * 136 + k]) - want[j * 136 + k]));
  }
  CHECK(worst <= 1e-6);
  CHECK(th::select_references(norm.data(), 2, cap) == std::vector<int>{0, 1});
  CHECK_THROWS_AS(th::select_references(norm.data(), n, 0), th::Error);
}

TEST_CASE("onnx header: role stamp, IR version and opset") {
  th::OnnxHeader h = th::read_onnx_header(package_path("model/generator.onnx"));
  json m = good_manifest();
  CHECK(h.metadata["talkinghead.role"] == "generator");
  CHECK(h.ir_version == m["graphs"]["generator"]["ir_version"].get<long long>());
  CHECK(h.opsets[""] == 17);
  CHECK_THROWS_AS(th::read_onnx_header(package_path("model/manifest.json")), th::Error);
}

TEST_CASE("package: loads and verifies the fixture") {
  th::Package p = th::load_package(package_path("model"), true);
  CHECK(p.files.count("graphs.embedder") == 1);
  CHECK_THROWS_AS(th::load_package(package_path("nope"), true), th::Error);
}

// ---- geometry against talkinghead.crop ------------------------------------------------------

TEST_CASE("crop rule and normalisation equal talkinghead.crop") {
  json idx = vector_index();
  for (int i : idx["shots"].get<std::vector<int>>()) {
    CAPTURE(i);
    const std::string s = "shot" + std::to_string(i);
    auto lm = load_vector<float>(s + "_landmarks");
    auto crop = load_vector<double>(s + "_crop");
    th::Crop c = th::crop_from_landmarks(lm.data(), th::CropRule{});
    CHECK(c.cx == doctest::Approx(crop[0]).epsilon(1e-12));
    CHECK(c.cy == doctest::Approx(crop[1]).epsilon(1e-12));
    CHECK(c.size == doctest::Approx(crop[2]).epsilon(1e-12));
    auto want = load_vector<float>(s + "_normalised");
    std::vector<float> got(136);
    th::to_normalised(lm.data(), 68, c, got.data());
    double worst = 0;
    for (int k = 0; k < 136; ++k) worst = std::max(worst, std::fabs(double(got[k]) - want[k]));
    CHECK(worst <= 1e-5);
  }
  auto in = load_vector<float>("to_pixels_in");
  auto want = load_vector<float>("to_pixels_out");
  th::Crop c = th::crop_from_landmarks(in.data(), th::CropRule{});
  std::vector<float> norm(136), back(136);
  th::to_normalised(in.data(), 68, c, norm.data());
  th::to_pixels(norm.data(), 68, c, back.data());
  for (int k = 0; k < 136; ++k) CHECK(back[k] == doctest::Approx(want[k]).epsilon(1e-6));
}

TEST_CASE("motion transfer equals talkinghead.motion.MotionTransfer") {
  // The avatar's face, a driver in the pixels of a 320x240 video, and Python's relative motion.
  std::vector<long long> shape;
  auto source = load_vector<float>("source_landmarks");
  auto driver = load_vector<float>("drive_pixels", &shape);
  auto want = load_vector<float>("motion_relative");
  th::MotionTransfer motion;
  motion.set_reference(driver.data(), true, th::CropRule{}, nullptr, source.data());
  std::vector<float> got(136);
  double worst = 0;
  for (long long f = 0; f < shape[0]; ++f) {
    motion.apply(driver.data() + f * 136, true, got.data());
    for (int k = 0; k < 136; ++k) worst = std::max(worst, std::fabs(double(got[k]) - want[f * 136 + k]));
  }
  CHECK(worst <= 1e-6);
  // The first frame is its own reference: relative motion gives the avatar's face back.
  motion.apply(driver.data(), true, got.data());
  for (int k = 0; k < 136; ++k) CHECK(got[k] == doctest::Approx(source[k]).epsilon(1e-6));
  th::MotionTransfer unset;
  CHECK_THROWS_AS(unset.apply(driver.data(), false, got.data()), th::Error);
}

TEST_CASE("warp_to_crop equals talkinghead.crop.warp_to_crop within 1") {
  json idx = vector_index();
  const int r = idx["resolution"].get<int>();
  th::WarpScratch scratch;
  auto check = [&](const std::string& image_name, const std::vector<double>& crop, const std::string& want_name, int res) {
    std::vector<long long> shape;
    auto img = load_vector<std::uint8_t>(image_name, &shape);
    th::ImageView v{img.data(), int(shape[1]), int(shape[0]), int(shape[1] * 3), img.size()};
    std::vector<std::uint8_t> got(std::size_t(res) * res * 3);
    th::warp_to_crop(v, th::Crop{crop[0], crop[1], crop[2]}, res, got.data(), scratch);
    auto want = load_vector<std::uint8_t>(want_name);
    REQUIRE(want.size() == got.size());
    int worst = 0;
    std::size_t differ = 0;
    for (std::size_t k = 0; k < got.size(); ++k) {
      int d = std::abs(int(got[k]) - int(want[k]));
      worst = std::max(worst, d);
      differ += d != 0;
    }
    INFO(want_name << ": max abs diff " << worst << ", " << differ << " values differ");
    CHECK(worst <= 1);
    MESSAGE(want_name << ": max abs diff " << worst << " (" << differ << " of " << got.size() << " values differ)");
  };
  for (int i : idx["shots"].get<std::vector<int>>()) {
    const std::string s = "shot" + std::to_string(i);
    check(s + "_image", load_vector<double>(s + "_crop"), s + "_crop_image", r);
  }
  for (const auto& w : idx["warps"]) {
    const std::string n = w["name"].get<std::string>();
    check("shot2_image", load_vector<double>(n + "_crop"), n + "_image", w["resolution"].get<int>());
  }
}

TEST_CASE("paste_back equals talkinghead.pasteback.paste_back within 1") {
  json idx = vector_index();
  std::vector<long long> shape;
  auto frame = load_vector<std::uint8_t>("paste_frame", &shape);
  const int h = int(shape[0]), w = int(shape[1]);
  th::ImageView view{frame.data(), w, h, w * 3, frame.size()};
  th::PasteScratch scratch;
  int unchanged = 0;
  for (const auto& c : idx["pastes"]) {
    const PasteCase p = load_paste_case(c);
    const th::Crop crop{p.crop[0], p.crop[1], p.crop[2]};
    std::vector<std::uint8_t> got(frame.size());
    th::paste_back(view, p.crop_image.data(), p.resolution, crop, p.feather, got.data(), got.size(), scratch);
    REQUIRE(p.want.size() == got.size());
    const int worst = max_diff(got, p.want);
    INFO(p.name << ": max abs diff " << worst);
    CHECK(worst <= 1);
    unchanged += got == frame;
    // in place gives the same frame
    std::vector<std::uint8_t> inplace = frame;
    th::ImageView iv{inplace.data(), w, h, w * 3, inplace.size()};
    th::paste_back(iv, p.crop_image.data(), p.resolution, crop, p.feather, inplace.data(), inplace.size(), scratch);
    CHECK(inplace == got);
  }
  CHECK(unchanged == 1);  // the crop wholly off the frame
  std::uint8_t crop_px[12] = {0};
  std::vector<std::uint8_t> out(frame.size());
  const th::Crop c{10, 10, 8};
  CHECK_THROWS_AS(th::paste_back(view, crop_px, 2, c, -0.1, out.data(), out.size(), scratch), th::Error);
  CHECK_THROWS_AS(th::paste_back(view, crop_px, 2, c, 0.7, out.data(), out.size(), scratch), th::Error);
  CHECK_THROWS_AS(th::paste_back(view, crop_px, 2, c, std::nan(""), out.data(), out.size(), scratch), th::Error);
  CHECK_THROWS_AS(th::paste_back(view, crop_px, 0, c, 0.12, out.data(), out.size(), scratch), th::Error);
  CHECK_THROWS_AS(th::paste_back(view, crop_px, 2, c, 0.12, out.data(), out.size() - 1, scratch), th::Error);
  CHECK_THROWS_AS(th::paste_back(view, crop_px, 2, th::Crop{10, 10, 0}, 0.12, out.data(), out.size(), scratch), th::Error);
  CHECK_NOTHROW(th::paste_back(view, crop_px, 2, c, 0.12, out.data(), out.size(), scratch));
}

TEST_CASE("geometry rejects bad input") {
  std::vector<float> lm(136, 1.0f);
  CHECK_THROWS_AS(th::crop_from_landmarks(lm.data(), th::CropRule{}), th::Error);  // degenerate
  lm[5] = NAN;
  CHECK_THROWS_AS(th::crop_from_landmarks(lm.data(), th::CropRule{}), th::Error);
  std::uint8_t px[12] = {0};
  th::WarpScratch s;
  std::uint8_t out[48];
  CHECK_THROWS_AS(th::warp_to_crop(th::ImageView{px, 2, 2, 5, sizeof px}, th::Crop{1, 1, 2}, 4, out, s), th::Error);  // stride
  CHECK_THROWS_AS(th::warp_to_crop(th::ImageView{nullptr, 2, 2, 6, sizeof px}, th::Crop{1, 1, 2}, 4, out, s), th::Error);
  CHECK_THROWS_AS(th::warp_to_crop(th::ImageView{px, 2, 2, 6, sizeof px}, th::Crop{1, 1, -2}, 4, out, s), th::Error);
  CHECK_NOTHROW(th::warp_to_crop(th::ImageView{px, 2, 2, 6, sizeof px}, th::Crop{1, 1, 2}, 4, out, s));
  CHECK_THROWS_AS(th::warp_to_crop(th::ImageView{px, 2, 2, 6, sizeof px - 1}, th::Crop{1, 1, 2}, 4, out, s), th::Error);  // short buffer
  // Found by tests/fuzz (native_shot_timeout-*): a crop of 590,000 px over a small image ran its box
  // prefilter for minutes; a crop over 8x the image's side, or off the image, is refused at once.
  CHECK_THROWS_AS(th::warp_to_crop(th::ImageView{px, 2, 2, 6, sizeof px}, th::Crop{1, 1, 589824}, 4, out, s), th::Error);
  CHECK_THROWS_AS(th::warp_to_crop(th::ImageView{px, 2, 2, 6, sizeof px}, th::Crop{100, 1, 2}, 4, out, s), th::Error);
  CHECK_NOTHROW(th::warp_to_crop(th::ImageView{px, 2, 2, 6, sizeof px}, th::Crop{1, 1, 16}, 4, out, s));
}

TEST_CASE("every input the C++ fuzzers found gets a th::Error or is read, nothing else") {
  // tests/fuzz/crashes/native_<target>_*: written by tests/fuzz/run.sh (libFuzzer), fixed since.
  int replayed = 0;
  for (const auto& entry : std::filesystem::directory_iterator(TH_FUZZ_CRASHES)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("native_", 0) != 0) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto* data = reinterpret_cast<const std::uint8_t*>(bytes.data());
    CAPTURE(name);
    try {
      if (name.rfind("native_manifest_", 0) == 0) th_fuzz::manifest(data, bytes.size());
      else if (name.rfind("native_onnx_", 0) == 0) th_fuzz::onnx(data, bytes.size());
      else if (name.rfind("native_shot_", 0) == 0) th_fuzz::shot(data, bytes.size());
      else FAIL("unknown fuzz target");
    } catch (const th::Error&) {
    }
    ++replayed;
  }
  CHECK(replayed >= 2);
}

TEST_CASE("the manifest conformance corpus: valid ones load, invalid ones fail with their key") {
  // contract/manifests (contract/make_manifests.py); tests/sdk/test_contract.py reads the same files.
  const std::string dir = contract_path("manifests/");
  const json cases = json::parse(read_text(dir + "cases.json"));
  int invalid = 0;
  for (const auto& item : cases.items()) {
    const json& c = item.value();
    CAPTURE(item.key());
    const std::string text = read_text(dir + c["file"].get<std::string>());
    if (c["valid"].get<bool>()) {
      CHECK_NOTHROW(th::parse_manifest(text));
      continue;
    }
    ++invalid;
    std::string key = "(accepted)";
    try {
      th::parse_manifest(text);
    } catch (const th::Error& e) {
      CHECK(e.code() == th::Code::ModelPackage);
      key = e.key();
    }
    CHECK(key == c["key"].get<std::string>());
  }
  CHECK(invalid >= 30);
}
