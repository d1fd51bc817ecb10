// The C ABI's half of the bad-input table (issue 18): every case is a call with one wrong thing,
// the status it must return and a word its message must hold. Nothing may crash (this binary also
// runs under AddressSanitizer + UBSan: a read past a buffer or a use after free fails it).
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "talkinghead.h"
#include "test_support.h"

namespace {

struct Case {
  const char* name;
  th_status want;
  const char* part;  // in th_last_error()
  std::function<th_status()> call;
};

struct Warnings {
  int count = 0;
  std::string last;
};

void on_log(void* user, th_log_level level, const char* message) {
  auto* w = static_cast<Warnings*>(user);
  if (level >= TH_LOG_WARNING) {
    ++w->count;
    w->last = message;
  }
}

th_model* load_model(const th_model_config* cfg = nullptr) {
  th_model* m = nullptr;
  const th_status s = th_model_load(package_path("model").c_str(), cfg, &m);
  INFO(th_last_error());
  REQUIRE(s == TH_OK);
  return m;
}

}  // namespace

TEST_CASE("bad input table: each wrong call gets its status and a message naming the problem") {
  Warnings warnings;
  th_set_log_callback(on_log, &warnings, TH_LOG_WARNING);
  th_model* m = load_model();
  const int r = vector_index()["resolution"].get<int>();
  th_model_info info;
  th_model_info_init(&info);
  REQUIRE(th_model_get_info(m, &info) == TH_OK);
  const int dim = info.embedding_dim;
  std::vector<long long> shape;
  std::vector<std::uint8_t> pixels = load_vector<std::uint8_t>("shot" + std::to_string(vector_index()["shots"][0].get<int>()) + "_image", &shape);
  std::vector<float> shot_lm = load_vector<float>("shot" + std::to_string(vector_index()["shots"][0].get<int>()) + "_landmarks");
  const int w = int(shape[1]), h = int(shape[0]);
  const th_image good{pixels.data(), w, h, w * 3, pixels.size()};
  th_avatar* a = nullptr;
  REQUIRE(th_avatar_create(m, &good, shot_lm.data(), 1, &a) == TH_OK);
  std::vector<float> drive = load_vector<float>("drive_normalised");  // crop-normalised frames
  std::vector<std::uint8_t> out(std::size_t(r) * r * 3 * 2);
  const std::size_t frame = std::size_t(r) * r * 3;

  // Handles destroyed before use (fresh ones, so the live model and avatar stay usable).
  th_model* dead_model = load_model();
  th_avatar* dead_avatar = nullptr;
  REQUIRE(th_avatar_create(m, &good, shot_lm.data(), 1, &dead_avatar) == TH_OK);
  th_stream* dead_stream = nullptr;
  REQUIRE(th_stream_create(m, a, nullptr, &dead_stream) == TH_OK);
  th_model_destroy(dead_model);
  th_avatar_destroy(dead_avatar);
  th_stream_destroy(dead_stream);
  // A stream whose model is gone.
  th_model* gone = load_model();
  th_stream* orphan = nullptr;
  REQUIRE(th_stream_create(gone, a, nullptr, &orphan) == TH_OK);
  th_model_destroy(gone);
  int not_a_handle[64] = {0};
  auto* fake_model = reinterpret_cast<th_model*>(not_a_handle);
  auto* fake_avatar = reinterpret_cast<th_avatar*>(not_a_handle);
  th_stream* live_stream = nullptr;
  REQUIRE(th_stream_create(m, a, nullptr, &live_stream) == TH_OK);

  auto image = [&](auto edit) { th_image img = good; edit(img); return img; };
  auto create_with = [&](th_image img) {
    th_avatar* x = nullptr;
    th_status s = th_avatar_create(m, &img, shot_lm.data(), 1, &x);
    th_avatar_destroy(x);
    return s;
  };
  auto lm_with = [&](std::vector<float> lm, int i, float v) { lm[std::size_t(i)] = v; return lm; };
  auto render = [&](const std::vector<float>& lm, int batch = 1, const th_render_options* o = nullptr) {
    return th_render(m, a, lm.data(), batch, o, out.data(), out.size());
  };
  auto render_pixels = [&](const std::vector<float>& lm) {
    th_render_options o;
    th_render_options_init(&o);
    o.coords = TH_COORDS_PIXELS;
    return render(lm, 1, &o);
  };
  auto relative = [&](const std::vector<float>& lm, const std::vector<float>& ref) {
    th_render_options o;
    th_render_options_init(&o);
    o.reference = ref.data();
    return render(lm, 1, &o);
  };
  auto load_cfg = [&](auto edit, const char* dir = nullptr) {
    th_model_config c;
    th_model_config_init(&c);
    edit(c);
    th_model* x = nullptr;
    th_status s = th_model_load(dir ? dir : package_path("model").c_str(), &c, &x);
    th_model_destroy(x);
    return s;
  };
  auto controls = [&](auto edit) {
    th_controls c;
    th_controls_init(&c);
    edit(c);
    return th_stream_set_controls(live_stream, &c);
  };
  std::vector<float> one(drive.begin(), drive.begin() + 136);
  std::vector<float> shifted = one;
  for (float& v : shifted) v += 100.0f;  // normalised, 100 crop half-widths away
  std::vector<float> zeros(136, 0.0f);
  std::vector<float> many(std::size_t(4097) * 136);
  for (int i = 0; i < 4097; ++i) std::copy(one.begin(), one.end(), many.begin() + std::ptrdiff_t(i) * 136);
  std::vector<float> id(std::size_t(dim), 0.1f);
  float crop_ok[3] = {0, 0, 2};
  double crop_zero[3] = {0, 0, 0}, crop_unit[3] = {0, 0, 2};
  float pts[4] = {NAN, 0, 0, 0}, pts_out[4];
  const float big = 1e30f;

  const std::vector<Case> cases = {
      // handles used after destroy, or never made
      {"get_info of a destroyed model", TH_ERROR_INVALID_ARGUMENT, "not a live th_model", [&] { th_model_info i; th_model_info_init(&i); return th_model_get_info(dead_model, &i); }},
      {"render with a destroyed model", TH_ERROR_INVALID_ARGUMENT, "not a live th_model", [&] { return th_render(dead_model, a, one.data(), 1, nullptr, out.data(), out.size()); }},
      {"render with a destroyed avatar", TH_ERROR_INVALID_ARGUMENT, "not a live th_avatar", [&] { return th_render(m, dead_avatar, one.data(), 1, nullptr, out.data(), out.size()); }},
      {"render with a pointer the library never made", TH_ERROR_INVALID_ARGUMENT, "not a live th_model", [&] { return th_render(fake_model, a, one.data(), 1, nullptr, out.data(), out.size()); }},
      {"render with a fake avatar", TH_ERROR_INVALID_ARGUMENT, "not a live th_avatar", [&] { return th_render(m, fake_avatar, one.data(), 1, nullptr, out.data(), out.size()); }},
      {"avatar_create on a destroyed model", TH_ERROR_INVALID_ARGUMENT, "not a live th_model", [&] { th_avatar* x = nullptr; return th_avatar_create(dead_model, &good, shot_lm.data(), 1, &x); }},
      {"avatar_from_identity on a destroyed model", TH_ERROR_INVALID_ARGUMENT, "not a live th_model", [&] { th_avatar* x = nullptr; return th_avatar_from_identity(dead_model, id.data(), dim, nullptr, &x); }},
      {"get_identity of a destroyed avatar", TH_ERROR_INVALID_ARGUMENT, "not a live th_avatar", [&] { return th_avatar_get_identity(dead_avatar, id.data(), dim); }},
      {"get_source_landmarks of a destroyed avatar", TH_ERROR_INVALID_ARGUMENT, "not a live th_avatar", [&] { std::vector<float> o(136); return th_avatar_get_source_landmarks(dead_avatar, o.data()); }},
      {"stream_create on a destroyed model", TH_ERROR_INVALID_ARGUMENT, "not a live th_model", [&] { th_stream* x = nullptr; return th_stream_create(dead_model, a, nullptr, &x); }},
      {"stream_create with a destroyed avatar", TH_ERROR_INVALID_ARGUMENT, "not a live th_avatar", [&] { th_stream* x = nullptr; return th_stream_create(m, dead_avatar, nullptr, &x); }},
      {"push to a destroyed stream", TH_ERROR_INVALID_ARGUMENT, "not a live th_stream", [&] { return th_stream_push(dead_stream, one.data(), TH_COORDS_NORMALISED, 0.0, out.data(), frame); }},
      {"reset a destroyed stream", TH_ERROR_INVALID_ARGUMENT, "not a live th_stream", [&] { return th_stream_reset(dead_stream); }},
      {"stats of a destroyed stream", TH_ERROR_INVALID_ARGUMENT, "not a live th_stream", [&] { return th_stream_get_stats(dead_stream, nullptr, nullptr, nullptr); }},
      {"controls of a destroyed stream", TH_ERROR_INVALID_ARGUMENT, "not a live th_stream", [&] { return th_stream_set_controls(dead_stream, nullptr); }},
      {"push to a stream whose model was destroyed", TH_ERROR_INVALID_ARGUMENT, "was destroyed", [&] { return th_stream_push(orphan, one.data(), TH_COORDS_NORMALISED, 0.0, out.data(), frame); }},
      {"an avatar handle passed as a model", TH_ERROR_INVALID_ARGUMENT, "not a live th_model", [&] { return th_render(reinterpret_cast<th_model*>(a), a, one.data(), 1, nullptr, out.data(), out.size()); }},
      {"crop_from_landmarks with a destroyed model", TH_ERROR_INVALID_ARGUMENT, "not a live th_model", [&] { double c[3]; return th_crop_from_landmarks(dead_model, shot_lm.data(), c); }},
      // images: the buffer length, sizes and strides
      {"image size 0", TH_ERROR_SIZE_MISMATCH, "buffer holds 0", [&] { return create_with(image([](th_image& i) { i.size = 0; })); }},
      {"image one byte short", TH_ERROR_SIZE_MISMATCH, "needs", [&] { return create_with(image([](th_image& i) { i.size -= 1; })); }},
      {"image half its bytes", TH_ERROR_SIZE_MISMATCH, "needs", [&] { return create_with(image([](th_image& i) { i.size /= 2; })); }},
      {"image stride past the buffer", TH_ERROR_SIZE_MISMATCH, "needs", [&] { return create_with(image([](th_image& i) { i.stride *= 2; })); }},
      {"image stride below 3 * width", TH_ERROR_SIZE_MISMATCH, "stride", [&] { return create_with(image([](th_image& i) { i.stride = i.width * 3 - 1; })); }},
      {"image of 100 MP", TH_ERROR_INVALID_ARGUMENT, "64 MP", [&] { return create_with(image([](th_image& i) { i.width = 10000; i.height = 10000; i.stride = 30000; })); }},
      {"image wider than 65536", TH_ERROR_INVALID_ARGUMENT, "65536", [&] { return create_with(image([](th_image& i) { i.width = 70000; i.stride = 210000; })); }},
      {"image width 0", TH_ERROR_INVALID_ARGUMENT, "size must be > 0", [&] { return create_with(image([](th_image& i) { i.width = 0; })); }},
      {"image height -3", TH_ERROR_INVALID_ARGUMENT, "size must be > 0", [&] { return create_with(image([](th_image& i) { i.height = -3; })); }},
      {"image data NULL", TH_ERROR_INVALID_ARGUMENT, "NULL", [&] { return create_with(image([](th_image& i) { i.data = nullptr; })); }},
      // landmarks: finite, bounded, a face on the picture
      {"render landmarks 1e30", TH_ERROR_INVALID_ARGUMENT, "beyond", [&] { return render(lm_with(one, 5, big)); }},
      {"render landmarks -2e6", TH_ERROR_INVALID_ARGUMENT, "beyond", [&] { return render(lm_with(one, 0, -2e6f)); }},
      {"render landmarks NaN", TH_ERROR_INVALID_ARGUMENT, "NaN", [&] { return render(lm_with(one, 7, NAN)); }},
      {"render landmarks inf", TH_ERROR_INVALID_ARGUMENT, "infinite", [&] { return render(lm_with(one, 7, INFINITY)); }},
      {"render a face 100 crops away", TH_ERROR_INVALID_ARGUMENT, "off the picture", [&] { return render(shifted); }},
      {"render one point 5 crops away", TH_ERROR_INVALID_ARGUMENT, "off the picture", [&] { return render(lm_with(one, 40, 5.0f)); }},
      {"render a degenerate face", TH_ERROR_INVALID_ARGUMENT, "degenerate", [&] { return render(zeros); }},
      {"render pixels 1e30", TH_ERROR_INVALID_ARGUMENT, "beyond", [&] { return render_pixels(lm_with(shot_lm, 3, big)); }},
      {"render pixels, all points equal", TH_ERROR_INVALID_ARGUMENT, "degenerate", [&] { return render_pixels(std::vector<float>(136, 50.0f)); }},
      {"relative reference 1e30", TH_ERROR_INVALID_ARGUMENT, "beyond", [&] { return relative(one, lm_with(one, 2, big)); }},
      {"relative motion moving the face off", TH_ERROR_INVALID_ARGUMENT, "off the picture", [&] { return relative(shifted, one); }},
      {"the second frame of a batch off the picture", TH_ERROR_INVALID_ARGUMENT, "frame 1", [&] { std::vector<float> two(one); two.insert(two.end(), shifted.begin(), shifted.end()); return render(two, 2); }},
      {"avatar landmarks 1e30", TH_ERROR_INVALID_ARGUMENT, "beyond", [&] { th_avatar* x = nullptr; auto lm = lm_with(shot_lm, 9, big); return th_avatar_create(m, &good, lm.data(), 1, &x); }},
      {"avatar landmarks NaN", TH_ERROR_INVALID_ARGUMENT, "NaN", [&] { th_avatar* x = nullptr; auto lm = lm_with(shot_lm, 9, NAN); return th_avatar_create(m, &good, lm.data(), 1, &x); }},
      {"stream push 1e30", TH_ERROR_INVALID_ARGUMENT, "beyond", [&] { auto lm = lm_with(one, 1, big); return th_stream_push(live_stream, lm.data(), TH_COORDS_NORMALISED, 1.0, out.data(), frame); }},
      {"stream push a face off the picture", TH_ERROR_INVALID_ARGUMENT, "off the picture", [&] { th_stream_reset(live_stream); th_stream_push(live_stream, one.data(), TH_COORDS_NORMALISED, 2.0, out.data(), frame); return th_stream_push(live_stream, shifted.data(), TH_COORDS_NORMALISED, 3.0, out.data(), frame); }},
      {"stream timestamp NaN", TH_ERROR_INVALID_ARGUMENT, "timestamp", [&] { return th_stream_push(live_stream, one.data(), TH_COORDS_NORMALISED, NAN, out.data(), frame); }},
      {"stream timestamp going back", TH_ERROR_INVALID_ARGUMENT, "increase", [&] { th_stream_push(live_stream, one.data(), TH_COORDS_NORMALISED, 50.0, out.data(), frame); return th_stream_push(live_stream, one.data(), TH_COORDS_NORMALISED, 49.0, out.data(), frame); }},
      {"stream coords 7", TH_ERROR_INVALID_ARGUMENT, "coords", [&] { th_coords c; const int seven = 7; std::memcpy(&c, &seven, sizeof c); return th_stream_push(live_stream, one.data(), c, 60.0, out.data(), frame); }},
      {"stream out one byte short", TH_ERROR_SIZE_MISMATCH, "one frame needs", [&] { return th_stream_push(live_stream, one.data(), TH_COORDS_NORMALISED, 70.0, out.data(), frame - 1); }},
      // identities
      {"identity NaN", TH_ERROR_INVALID_ARGUMENT, "NaN", [&] { th_avatar* x = nullptr; auto v = id; v[3] = NAN; return th_avatar_from_identity(m, v.data(), dim, nullptr, &x); }},
      {"identity inf", TH_ERROR_INVALID_ARGUMENT, "infinite", [&] { th_avatar* x = nullptr; auto v = id; v[0] = INFINITY; return th_avatar_from_identity(m, v.data(), dim, nullptr, &x); }},
      {"identity of another size", TH_ERROR_SIZE_MISMATCH, "another model", [&] { th_avatar* x = nullptr; return th_avatar_from_identity(m, id.data(), dim - 1, nullptr, &x); }},
      {"identity source landmarks off the picture", TH_ERROR_INVALID_ARGUMENT, "off the picture", [&] { th_avatar* x = nullptr; return th_avatar_from_identity(m, id.data(), dim, shifted.data(), &x); }},
      {"identity source landmarks degenerate", TH_ERROR_INVALID_ARGUMENT, "degenerate", [&] { th_avatar* x = nullptr; return th_avatar_from_identity(m, id.data(), dim, zeros.data(), &x); }},
      {"get_identity capacity -1", TH_ERROR_SIZE_MISMATCH, "capacity", [&] { return th_avatar_get_identity(a, id.data(), -1); }},
      // frame counts and buffers
      {"render 4097 frames", TH_ERROR_INVALID_ARGUMENT, "4096", [&] { return th_render(m, a, many.data(), 4097, nullptr, out.data(), out.size()); }},
      {"render 0 frames", TH_ERROR_INVALID_ARGUMENT, "batch", [&] { return render(one, 0); }},
      {"render -1 frames", TH_ERROR_INVALID_ARGUMENT, "batch", [&] { return render(one, -1); }},
      {"render out of 0 bytes", TH_ERROR_SIZE_MISMATCH, "need", [&] { return th_render(m, a, one.data(), 1, nullptr, out.data(), 0); }},
      {"shots 33", TH_ERROR_INVALID_ARGUMENT, "1 to 32", [&] { std::vector<th_image> v(33, good); th_avatar* x = nullptr; return th_avatar_create(m, v.data(), shot_lm.data(), 33, &x); }},
      {"shots -1", TH_ERROR_INVALID_ARGUMENT, "1 to 32", [&] { th_avatar* x = nullptr; return th_avatar_create(m, &good, shot_lm.data(), -1, &x); }},
      // model config
      {"intra_op_threads -5", TH_ERROR_INVALID_ARGUMENT, "intra_op_threads", [&] { return load_cfg([](th_model_config& c) { c.intra_op_threads = -5; }); }},
      {"inter_op_threads -1", TH_ERROR_INVALID_ARGUMENT, "inter_op_threads", [&] { return load_cfg([](th_model_config& c) { c.inter_op_threads = -1; }); }},
      {"struct_size 2", TH_ERROR_INVALID_ARGUMENT, "struct_size", [&] { return load_cfg([](th_model_config& c) { c.struct_size = 2; }); }},
      {"an unknown variant", TH_ERROR_MODEL_PACKAGE, "no variant", [&] { return load_cfg([](th_model_config& c) { c.variant = "int3"; }); }},
      {"device_id -1", TH_ERROR_INVALID_ARGUMENT, "device_id", [&] { return load_cfg([](th_model_config& c) { c.device_id = -1; }); }},
      {"a package folder that does not exist", TH_ERROR_NOT_FOUND, "", [&] { return load_cfg([](th_model_config&) {}, "/nonexistent/talkinghead"); }},
      {"an empty package path", TH_ERROR_NOT_FOUND, "", [&] { return load_cfg([](th_model_config&) {}, ""); }},
      // controls
      {"eye_open 5", TH_ERROR_INVALID_ARGUMENT, "eye_open", [&] { return controls([](th_controls& c) { c.eye_open = 5; }); }},
      {"yaw NaN", TH_ERROR_INVALID_ARGUMENT, "yaw", [&] { return controls([](th_controls& c) { c.yaw = NAN; }); }},
      {"mouth_open -1", TH_ERROR_INVALID_ARGUMENT, "mouth_open", [&] { return controls([](th_controls& c) { c.mouth_open = -1; }); }},
      {"roll 1e300", TH_ERROR_INVALID_ARGUMENT, "roll", [&] { return controls([](th_controls& c) { c.roll = 1e300; }); }},
      // geometry helpers
      {"to_normalised count -1", TH_ERROR_INVALID_ARGUMENT, "count", [&] { return th_to_normalised(crop_ok, -1, crop_unit, pts_out); }},
      {"to_normalised a crop of size 0", TH_ERROR_INVALID_ARGUMENT, "crop", [&] { return th_to_normalised(crop_ok, 1, crop_zero, pts_out); }},
      {"to_pixels NaN", TH_ERROR_INVALID_ARGUMENT, "NaN", [&] { return th_to_pixels(pts, 2, crop_unit, pts_out); }},
  };
  int passed = 0;
  for (const Case& c : cases) {
    CAPTURE(c.name);
    const th_status got = c.call();
    const std::string msg = th_last_error();
    CAPTURE(msg);
    CHECK(got == c.want);
    CHECK(msg.find(c.part) != std::string::npos);
    passed += got == c.want && msg.find(c.part) != std::string::npos;
  }
  MESSAGE("C ABI bad-input cases: " << passed << " of " << cases.size());

  SUBCASE("a second destroy is ignored with a warning, never a double free") {
    const int before = warnings.count;
    th_avatar_destroy(dead_avatar);
    th_model_destroy(dead_model);
    th_stream_destroy(dead_stream);
    CHECK(warnings.count == before + 3);
    CHECK(warnings.last.find("destroyed twice") != std::string::npos);
  }
  SUBCASE("handles are never reused: destroyed ones stay refused however many new ones are made") {
    // The allocator reuses freed memory at once (Windows' heap did, under Wine in CI), so a handle
    // that was an address would name a new object; serial handles cannot.
    std::set<const void*> seen{dead_model, dead_avatar, dead_stream, gone, orphan, live_stream, m, a};
    for (int i = 0; i < 100; ++i) {
      th_stream* s = nullptr;
      th_avatar* x = nullptr;
      REQUIRE(th_stream_create(m, a, nullptr, &s) == TH_OK);
      REQUIRE(th_avatar_create(m, &good, shot_lm.data(), 1, &x) == TH_OK);
      CHECK(seen.insert(s).second);
      CHECK(seen.insert(x).second);
      th_stream_destroy(s);
      th_avatar_destroy(x);
    }
    th_model* fresh = load_model();
    CHECK(seen.insert(fresh).second);
    CHECK(th_stream_reset(dead_stream) == TH_ERROR_INVALID_ARGUMENT);
    CHECK(th_avatar_get_identity(dead_avatar, id.data(), dim) == TH_ERROR_INVALID_ARGUMENT);
    CHECK(th_model_get_info(dead_model, &info) == TH_ERROR_INVALID_ARGUMENT);
    // A stream whose model is gone stays refused after a new model is loaded.
    CHECK(th_stream_push(orphan, one.data(), TH_COORDS_NORMALISED, 0.0, out.data(), frame) == TH_ERROR_INVALID_ARGUMENT);
    CHECK(std::string(th_last_error()).find("was destroyed") != std::string::npos);
    th_model_destroy(fresh);
  }
  SUBCASE("100000 intra-op threads load at once with the machine's cores and a warning") {
    const int before = warnings.count;
    th_model_config c;
    th_model_config_init(&c);
    c.intra_op_threads = 100000;
    c.inter_op_threads = 100000;
    th_model* x = nullptr;
    CHECK(th_model_load(package_path("model").c_str(), &c, &x) == TH_OK);
    CHECK(warnings.count >= before + 2);
    CHECK(warnings.last.find("CPU core") != std::string::npos);
    CHECK(th_render(x, a, one.data(), 1, nullptr, out.data(), out.size()) == TH_OK);
    th_model_destroy(x);
  }
  SUBCASE("an image whose last row is exactly as long as the pixels it holds is read") {
    std::vector<std::uint8_t> padded(std::size_t(h) * (w * 3 + 5));
    for (int y = 0; y < h; ++y) std::memcpy(padded.data() + std::size_t(y) * (w * 3 + 5), pixels.data() + std::size_t(y) * w * 3, std::size_t(w) * 3);
    th_image tight{padded.data(), w, h, w * 3 + 5, std::size_t(w * 3 + 5) * (h - 1) + std::size_t(w) * 3};
    CHECK(create_with(tight) == TH_OK);
  }
  th_stream_destroy(orphan);
  th_stream_destroy(live_stream);
  th_avatar_destroy(a);
  th_model_destroy(m);
  th_set_log_callback(nullptr, nullptr, TH_LOG_WARNING);
}
