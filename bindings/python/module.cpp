// talkinghead._native: the C++ core for Python, one to one. numpy arrays in without copies
// (where their layout allows), results written straight into new numpy arrays, the GIL released
// around every computation. Errors are raised as talkinghead.errors types.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <system_error>
#include <string>
#include <vector>

#include "errors.h"
#include "geometry.h"
#include "model.h"
#include "ort_runtime.h"
#include "platform.h"
#include "stream.h"

namespace py = pybind11;

namespace {

using F32 = py::array_t<float, py::array::c_style | py::array::forcecast>;
using U8 = py::array_t<std::uint8_t, py::array::forcecast>;

[[noreturn]] void invalid(const std::string& m) { throw th::Error(th::Code::InvalidArgument, m); }

// [68, 2] or [B, 68, 2] float32 -> (array, batch, single)
F32 landmarks_arg(const py::object& obj, const char* name, int& batch, bool& single) {
  F32 a = F32::ensure(obj);
  if (!a) invalid(std::string(name) + " must be a float array");
  if (a.ndim() == 2 && a.shape(0) == 68 && a.shape(1) == 2) {
    batch = 1;
    single = true;
  } else if (a.ndim() == 3 && a.shape(1) == 68 && a.shape(2) == 2) {
    batch = static_cast<int>(a.shape(0));
    single = false;
  } else {
    std::string s = "[";
    for (py::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
    invalid(std::string(name) + " must have shape [68, 2] or [B, 68, 2], got " + s + "]");
  }
  return a;
}

// An RGB8 image as a view: zero-copy when pixels are 3 contiguous bytes; else a contiguous copy
// kept alive in `keep`.
th::ImageView image_arg(const py::handle& obj, const std::string& name, std::vector<py::object>& keep) {
  U8 a = U8::ensure(obj);
  if (!a) invalid(name + " must be a uint8 array");
  if (a.ndim() != 3 || a.shape(2) != 3) invalid(name + " must have shape [H, W, 3] (RGB)");
  if (a.strides(2) != 1 || a.strides(1) != 3 || a.strides(0) < 3 * a.shape(1)) {
    a = U8(py::module_::import("numpy").attr("ascontiguousarray")(a));
  }
  keep.push_back(a);
  // numpy guarantees the rows it describes: (H - 1) strides and one packed last row
  const std::size_t readable = static_cast<std::size_t>(a.strides(0)) * (a.shape(0) - 1) + 3 * static_cast<std::size_t>(a.shape(1));
  return th::ImageView{a.data(), static_cast<int>(a.shape(1)), static_cast<int>(a.shape(0)),
                       static_cast<int>(a.strides(0)), readable};
}

th::Crop crop_arg(const py::object& obj, const char* name) {
  if (py::hasattr(obj, "cx") && py::hasattr(obj, "cy") && py::hasattr(obj, "size")) {  // talkinghead.crop.Crop
    return th::Crop{obj.attr("cx").cast<double>(), obj.attr("cy").cast<double>(), obj.attr("size").cast<double>()};
  }
  auto a = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(obj);
  if (!a || a.size() != 3) invalid(std::string(name) + " must be (cx, cy, size)");
  return th::Crop{a.data()[0], a.data()[1], a.data()[2]};
}

std::string find_wheel_ort() {
  try {
    py::object spec = py::module_::import("importlib.util").attr("find_spec")("onnxruntime");
    if (spec.is_none()) return "";
    py::object locs = spec.attr("submodule_search_locations");
    if (locs.is_none()) return "";
    for (const auto& loc : locs) {
      const std::filesystem::path dir = std::filesystem::u8path(py::str(loc).cast<std::string>()) / "capi";
      std::error_code ec;
      std::string best;
      for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
        const std::string n = e.path().filename().u8string();
        for (const auto& name : th::platform::ort_library_names()) {
          if (n.rfind(name, 0) == 0 && n > best) best = n;
        }
      }
      if (!best.empty()) return (dir / std::filesystem::u8path(best)).generic_u8string();
    }
  } catch (const py::error_already_set&) {
  }
  return "";
}

const char* provider_name(th::Provider p) { return p == th::Provider::Cuda ? "cuda" : "cpu"; }

}  // namespace

// Points [..., 68, 2] through a crop mapping (th::to_normalised or th::to_pixels), same shape out.
template <typename Map>
py::array_t<float> map_points(const py::object& points, const py::object& crop, Map map) {
  int b = 0;
  bool single = false;
  F32 p = landmarks_arg(points, "points", b, single);
  th::Crop c = crop_arg(crop, "crop");
  th::check_finite(p.data(), static_cast<std::size_t>(p.size()), "points");
  th::check_crop(c, "crop");
  py::array_t<float> out(p.request().shape);
  map(p.data(), static_cast<int>(p.size() / 2), c, out.mutable_data());
  return out;
}

PYBIND11_MODULE(_native, m) {
  m.doc() = "talkinghead native core (C++ on ONNX Runtime): the same model package, crops and frames "
            "as the pure-Python path. See docs/embedding.md.";
  m.attr("__version__") = TALKINGHEAD_VERSION;
  m.attr("MAX_SHOTS") = th::kMaxShots;
  // input_limits.h, for the test that both languages hold the same bounds (talkinghead.limits)
  py::dict limits;
  limits["MAX_SHOTS"] = th::kMaxShots;
  limits["MAX_PIXEL_COORD"] = th::kMaxPixelCoord;
  limits["MAX_NORMALISED"] = th::kMaxNormalised;
  limits["MIN_FACE_SIZE"] = th::kMinFaceSize;
  limits["MAX_RENDER_FRAMES"] = th::kMaxRenderFrames;
  limits["MAX_CROP_TO_IMAGE"] = th::kMaxCropToImage;
  limits["RENDER_CHUNK"] = th::kRenderChunk;
  limits["MAX_IMAGE_PIXELS"] = th::kMaxImagePixels;
  m.attr("LIMITS") = limits;

  // Errors as talkinghead.errors types (one base class for the package).
  py::module_ errors = py::module_::import("talkinghead.errors");
  static py::object input_error = errors.attr("InputError");
  static py::object package_error = errors.attr("ModelPackageError");
  static py::object provider_error = errors.attr("ProviderError");
  static py::object base_error = errors.attr("TalkingHeadError");
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const th::Error& e) {
      py::object type = base_error;
      switch (e.code()) {
        case th::Code::InvalidArgument:
        case th::Code::SizeMismatch: type = input_error; break;
        case th::Code::NotFound:
        case th::Code::ModelPackage: type = package_error; break;
        case th::Code::Provider: type = provider_error; break;
        case th::Code::OutOfMemory: PyErr_SetString(PyExc_MemoryError, e.what()); return;
        default: break;
      }
      PyErr_SetString(type.ptr(), e.what());
    }
  });

  // Default ONNX Runtime: the one inside the onnxruntime wheel (TALKINGHEAD_ORT_LIBRARY wins).
  const std::string wheel = find_wheel_ort();
  if (!wheel.empty()) th::set_default_ort_library(wheel);

  m.def("ort_library", []() -> py::object {
    const th::OrtInfo* o = th::loaded_ort();
    if (!o) return py::none();
    return py::make_tuple(o->path, o->version);
  }, "(path, version) of the ONNX Runtime library loaded, or None before the first model.");

  py::class_<th::Avatar, std::shared_ptr<th::Avatar>>(m, "Avatar", "An identity: mean embedding + source face.")
      .def_property_readonly("identity", [](const th::Avatar& a) {
        return py::array_t<float>(static_cast<py::ssize_t>(a.identity.size()), a.identity.data());
      })
      .def_property_readonly("source_landmarks", [](const th::Avatar& a) -> py::object {
        if (!a.has_source) return py::none();
        return py::array_t<float>({68, 2}, a.source.data());
      })
      .def_property_readonly("crop", [](const th::Avatar& a) { return py::make_tuple(a.crop.cx, a.crop.cy, a.crop.size); })
      .def_property_readonly("shots", [](const th::Avatar& a) { return a.shots; })
      .def_property_readonly("ref_images", [](const th::Avatar& a) -> py::object {
        if (!a.references) return py::none();
        const py::ssize_t k = a.references;
        const py::ssize_t side = a.ref_resolution;
        py::array_t<float> out({k, static_cast<py::ssize_t>(3), side, side});
        std::copy(a.ref_images.begin(), a.ref_images.end(), out.mutable_data());
        return out;
      }, "A 'warp' model's reference crops float32 [K, 3, S, S] in [-1, 1], or None.")
      .def_property_readonly("ref_landmarks", [](const th::Avatar& a) -> py::object {
        if (!a.references) return py::none();
        py::array_t<float> out({static_cast<py::ssize_t>(a.references), static_cast<py::ssize_t>(68), static_cast<py::ssize_t>(2)});
        std::copy(a.ref_landmarks.begin(), a.ref_landmarks.end(), out.mutable_data());
        return out;
      }, "Their crop-normalised landmarks [K, 68, 2], or None.");

  py::class_<th::Model>(m, "Model", "A model package loaded on ONNX Runtime (thread-safe).")
      .def(py::init([](const std::string& folder, const std::string& provider, int device_id, int intra, int inter,
                       const std::string& variant, const std::string& ort_library, bool verify_hashes,
                       bool allow_spinning, bool watermark) {
             th::ModelConfig c;
             if (provider == "auto") c.provider = th::Provider::Auto;
             else if (provider == "cpu") c.provider = th::Provider::Cpu;
             else if (provider == "cuda") c.provider = th::Provider::Cuda;
             else invalid("provider must be 'auto', 'cpu' or 'cuda', got '" + provider + "'");
             c.device_id = device_id;
             c.intra_op_threads = intra;
             c.inter_op_threads = inter;
             c.variant = variant;
             c.ort_library = ort_library;
             c.verify_hashes = verify_hashes;
             c.allow_spinning = allow_spinning;
             c.watermark = watermark;
             py::gil_scoped_release release;
             return th::Model::load(folder, c);
           }),
           py::arg("folder"), py::arg("provider") = "auto", py::arg("device_id") = 0, py::arg("intra_op_threads") = 0,
           py::arg("inter_op_threads") = 0, py::arg("variant") = "auto", py::arg("ort_library") = "",
           py::arg("verify_hashes") = true, py::arg("allow_spinning") = true, py::arg("watermark") = true)
      .def_property_readonly("name", [](const th::Model& s) { return s.manifest().name; })
      .def_property_readonly("folder", &th::Model::folder)
      .def_property_readonly("resolution", &th::Model::resolution)
      .def_property_readonly("embedding_dim", &th::Model::embedding_dim)
      .def_property_readonly("personalised", &th::Model::personalised)
      .def_property_readonly("family", [](const th::Model& s) { return s.manifest().family; })
      .def_property_readonly("provider", [](const th::Model& s) { return provider_name(s.provider()); })
      .def_property_readonly("variant", &th::Model::variant)
      .def_property_readonly("warning", &th::Model::warning)
      .def_property_readonly("crop_rule", [](const th::Model& s) { return py::make_tuple(s.crop_rule().scale, s.crop_rule().offset_y); })
      .def("create_avatar", [](const th::Model& s, const py::sequence& images, const py::object& landmarks) {
             th::check_shot_count(static_cast<long long>(py::len(images)));
             int n = 0;
             bool single = false;
             F32 lm = landmarks_arg(landmarks, "landmarks", n, single);
             if (n != static_cast<int>(py::len(images))) {
               throw th::Error(th::Code::SizeMismatch, std::to_string(py::len(images)) + " images but " +
                                                           std::to_string(n) + " landmark arrays");
             }
             std::vector<py::object> keep;
             std::vector<th::ImageView> views;
             for (std::size_t i = 0; i < py::len(images); ++i) views.push_back(image_arg(images[i], "image " + std::to_string(i), keep));
             std::shared_ptr<th::Avatar> a;
             {
               py::gil_scoped_release release;
               a = std::make_shared<th::Avatar>(s.create_avatar(views.data(), lm.data(), n));
             }
             return a;
           },
           py::arg("images"), py::arg("landmarks"),
           "Embed 1-32 RGB uint8 images [H, W, 3] with their landmarks in pixels [N, 68, 2].")
      .def("avatar_from_identity", [](const th::Model& s, const py::object& identity, const py::object& source) {
             F32 id = F32::ensure(identity);
             if (!id || id.ndim() != 1) invalid("identity must be a 1-D float array");
             const float* src = nullptr;
             F32 sl;
             if (!source.is_none()) {
               int b = 0;
               bool single = false;
               sl = landmarks_arg(source, "source_landmarks", b, single);
               if (!single) invalid("source_landmarks must have shape [68, 2]");
               src = sl.data();
             }
             return std::make_shared<th::Avatar>(s.avatar_from_identity(id.data(), static_cast<int>(id.shape(0)), src));
           },
           py::arg("identity"), py::arg("source_landmarks") = py::none())
      .def("render", [](const th::Model& s, const std::shared_ptr<th::Avatar>& avatar, const py::object& landmarks,
                        const std::string& coords, const py::object& crops, const py::object& reference,
                        const py::object& reference_crop) {
             int b = 0;
             bool single = false;
             F32 lm = landmarks_arg(landmarks, "landmarks", b, single);
             th::RenderOptions o;
             if (coords == "pixels") o.pixels = true;
             else if (coords != "normalised") invalid("coords must be 'pixels' or 'normalised', got '" + coords + "'");
             py::array_t<double, py::array::c_style | py::array::forcecast> cr, rc;
             F32 ref;
             if (!crops.is_none()) {
               cr = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(crops);
               if (!cr || cr.size() != 3 * static_cast<py::ssize_t>(b)) invalid("crops must have shape [B, 3]");
               o.crops = cr.data();
             }
             if (!reference.is_none()) {
               int rb = 0;
               bool rs = false;
               ref = landmarks_arg(reference, "reference", rb, rs);
               if (!rs) invalid("reference must have shape [68, 2]");
               o.reference = ref.data();
             }
             if (!reference_crop.is_none()) {
               rc = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(reference_crop);
               if (!rc || rc.size() != 3) invalid("reference_crop must be (cx, cy, size)");
               o.reference_crop = rc.data();
             }
             const py::ssize_t r = s.resolution();
             py::array_t<std::uint8_t> out({static_cast<py::ssize_t>(b), r, r, static_cast<py::ssize_t>(3)});
             std::uint8_t* dst = out.mutable_data();
             const std::size_t size = static_cast<std::size_t>(out.size());
             {
               py::gil_scoped_release release;
               s.render(avatar.get(), lm.data(), b, o, dst, size);
             }
             if (single) return py::array_t<std::uint8_t>(out[py::int_(0)]);
             return out;
           },
           py::arg("avatar"), py::arg("landmarks"), py::arg("coords") = "normalised", py::arg("crops") = py::none(),
           py::arg("reference") = py::none(), py::arg("reference_crop") = py::none(),
           "Landmarks [68, 2] or [B, 68, 2] -> uint8 crops [R, R, 3] or [B, R, R, 3]. avatar may be None "
           "for a personalised model; reference (the driver's first frame, in `coords`) turns on relative motion.")
      .def("embed", [](const th::Model& s, const py::object& images, const py::object& landmarks) {
             F32 im = F32::ensure(images);
             int n = 0;
             bool single = false;
             F32 lm = landmarks_arg(landmarks, "landmarks", n, single);
             const int r = s.resolution();
             if (!im || im.ndim() != 4 || im.shape(0) != n || im.shape(1) != 3 || im.shape(2) != r || im.shape(3) != r) {
               throw th::Error(th::Code::SizeMismatch, "images must have shape [N, 3, R, R] matching landmarks [N, 68, 2]");
             }
             py::array_t<float> out({static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(s.embedding_dim())});
             float* dst = out.mutable_data();
             {
               py::gil_scoped_release release;
               s.embed(im.data(), lm.data(), n, dst);
             }
             return out;
           },
           py::arg("images"), py::arg("landmarks"), "The embedder graph: [N,3,R,R] in [-1,1] + [N,68,2] -> [N,D].")
      .def("generate", [](const th::Model& s, const py::object& landmarks, const py::object& identity,
                          const py::object& ref_images, const py::object& ref_landmarks) {
             int b = 0;
             bool single = false;
             F32 lm = landmarks_arg(landmarks, "landmarks", b, single);
             F32 id, ri, rl;
             if (!s.personalised()) {
               id = F32::ensure(identity);
               if (!id || id.ndim() != 2 || id.shape(0) != b || id.shape(1) != s.embedding_dim()) {
                 throw th::Error(th::Code::SizeMismatch, "identity must have shape [B, D]");
               }
             }
             int k = 0;
             if (ref_images.is_none() != ref_landmarks.is_none()) invalid("give both ref_images and ref_landmarks, or neither");
             if (!ref_images.is_none()) {
               const py::ssize_t side = s.manifest().reference_resolution;
               ri = F32::ensure(ref_images);
               if (!ri || ri.ndim() != 4 || ri.shape(1) != 3 || ri.shape(2) != side || ri.shape(3) != side) {
                 throw th::Error(th::Code::SizeMismatch, "ref_images must have shape [K, 3, S, S], S the package's reference resolution");
               }
               k = static_cast<int>(ri.shape(0));
               bool rs = false;
               int rk = 0;
               rl = landmarks_arg(ref_landmarks, "ref_landmarks", rk, rs);
               if (rs || rk != k) throw th::Error(th::Code::SizeMismatch, "ref_landmarks must have shape [K, 68, 2] matching ref_images");
             }
             const py::ssize_t r = s.resolution();
             py::array_t<float> out({static_cast<py::ssize_t>(b), static_cast<py::ssize_t>(3), r, r});
             float* dst = out.mutable_data();
             const float* idp = s.personalised() ? nullptr : id.data();
             const float* rip = k ? ri.data() : nullptr;
             const float* rlp = k ? rl.data() : nullptr;
             {
               py::gil_scoped_release release;
               s.generate(lm.data(), idp, b, dst, rip, rlp, k);
             }
             return out;
           },
           py::arg("landmarks"), py::arg("identity") = py::none(), py::arg("ref_images") = py::none(),
           py::arg("ref_landmarks") = py::none(),
           "The generator graph: [B,68,2] (+ [B,D]) (+ a warp model's [K,3,S,S] + [K,68,2]) -> [B,3,R,R] in [-1,1].");

  // A stream keeps its avatar (shared) and, through keep_alive, its model.
  struct PyStream {
    std::shared_ptr<th::Avatar> avatar;
    std::unique_ptr<th::Stream> core;
    int resolution = 0;
  };
  py::class_<PyStream>(m, "Stream", "th_stream: motion reference, One Euro smoothing and controls between pushes.")
      .def(py::init([](const th::Model& model, const std::shared_ptr<th::Avatar>& avatar, bool relative, bool smoothing) {
             auto s = std::make_unique<PyStream>();
             s->avatar = avatar;
             s->core = std::make_unique<th::Stream>(model, avatar.get(), th::StreamOptions{relative, smoothing});
             s->resolution = model.resolution();
             return s;
           }),
           py::arg("model"), py::arg("avatar"), py::arg("relative") = true, py::arg("smoothing") = true,
           py::keep_alive<1, 2>())
      .def("set_controls", [](PyStream& s, double eye_open, double mouth_open, double smile, double yaw, double pitch,
                              double roll, bool expression_only) {
             s.core->set_controls(th::Controls{eye_open, mouth_open, smile, yaw, pitch, roll, expression_only});
           },
           py::arg("eye_open") = 1.0, py::arg("mouth_open") = 0.0, py::arg("smile") = 0.0, py::arg("yaw") = 0.0,
           py::arg("pitch") = 0.0, py::arg("roll") = 0.0, py::arg("expression_only") = false)
      .def("push", [](PyStream& s, const py::object& landmarks, double timestamp, const std::string& coords) {
             int b = 0;
             bool single = false;
             F32 lm = landmarks_arg(landmarks, "landmarks", b, single);
             if (!single) invalid("landmarks of one frame must have shape [68, 2]");
             if (coords != "pixels" && coords != "normalised") invalid("coords must be 'pixels' or 'normalised', got '" + coords + "'");
             const py::ssize_t r = s.resolution;
             py::array_t<std::uint8_t> out({r, r, static_cast<py::ssize_t>(3)});
             std::uint8_t* dst = out.mutable_data();
             const std::size_t size = static_cast<std::size_t>(out.size());
             {
               py::gil_scoped_release release;
               s.core->push(lm.data(), coords == "pixels", timestamp, dst, size);
             }
             return out;
           },
           py::arg("landmarks"), py::arg("timestamp"), py::arg("coords") = "pixels")
      .def("reset", [](PyStream& s) { s.core->reset(); })
      .def_property_readonly("stats", [](const PyStream& s) {
        const th::StreamStats& st = s.core->stats();
        return py::make_tuple(st.pushed, st.rendered, st.failed);
      });

  m.def("crop_from_landmarks", [](const py::object& landmarks, double scale, double offset_y) {
          int b = 0;
          bool single = false;
          F32 lm = landmarks_arg(landmarks, "landmarks", b, single);
          if (!single) invalid("landmarks of one face must have shape [68, 2]");
          th::Crop c = th::crop_from_landmarks(lm.data(), th::CropRule{scale, offset_y});
          return py::make_tuple(c.cx, c.cy, c.size);
        },
        py::arg("landmarks"), py::arg("scale") = 1.7, py::arg("offset_y") = -0.1, "The crop rule: (cx, cy, size).");
  m.def("to_normalised", [](const py::object& points, const py::object& crop) {
          return map_points(points, crop, th::to_normalised);
        },
        py::arg("points"), py::arg("crop"));
  m.def("to_pixels", [](const py::object& points, const py::object& crop) {
          return map_points(points, crop, th::to_pixels);
        },
        py::arg("points"), py::arg("crop"));
  m.def("warp_to_crop", [](const py::object& image, const py::object& crop, int resolution) {
          std::vector<py::object> keep;
          th::ImageView v = image_arg(image, "image", keep);
          th::Crop c = crop_arg(crop, "crop");
          if (resolution <= 0 || resolution > 4096) invalid("resolution must be in 1..4096");
          py::array_t<std::uint8_t> out({static_cast<py::ssize_t>(resolution), static_cast<py::ssize_t>(resolution),
                                         static_cast<py::ssize_t>(3)});
          std::uint8_t* dst = out.mutable_data();
          {
            py::gil_scoped_release release;
            th::WarpScratch scratch;
            th::warp_to_crop(v, c, resolution, dst, scratch);
          }
          return out;
        },
        py::arg("image"), py::arg("crop"), py::arg("resolution"),
        "crop.warp_to_crop for RGB uint8 images: bilinear, edge padding, box prefilter beyond 2x.");
}
