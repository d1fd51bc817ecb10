#include "manifest.h"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "errors.h"
#include "input_limits.h"
#include "geometry.h"
#include "platform.h"
#include "sha256.h"

namespace th {
namespace {

using json = nlohmann::json;

const char* const kRoles[] = {"embedder", "generator"};

Error fail(const std::string& where, const std::string& message) {
  return Error(Code::ModelPackage, "manifest: " + where + ": " + message, where);
}

std::string type_name(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return "an integer";
    case json::value_t::number_float: return "a number";
    case json::value_t::string: return "a string";
    case json::value_t::array: return "an array";
    case json::value_t::object: return "an object";
    default: return "a value";
  }
}

std::string repr(const std::string& s) { return "'" + s + "'"; }

std::string key_path(const std::string& where, const std::string& key) {
  return where == "(top level)" ? key : where + "." + key;
}

std::string join(const std::vector<std::string>& items, const std::string& sep, bool quote) {
  std::string out;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i) out += sep;
    out += quote ? repr(items[i]) : items[i];
  }
  return out;
}

const json& object(const json& v, const std::string& where, const std::vector<std::string>& required,
                   const std::vector<std::string>& optional = {}) {
  if (!v.is_object()) throw fail(where, "expected an object, got " + type_name(v));
  std::set<std::string> allowed(required.begin(), required.end());
  allowed.insert(optional.begin(), optional.end());
  std::vector<std::string> unknown;
  for (auto it = v.begin(); it != v.end(); ++it) {
    if (!allowed.count(it.key())) unknown.push_back(it.key());
  }
  if (!unknown.empty()) {
    std::vector<std::string> all(allowed.begin(), allowed.end());
    throw fail(where, "unknown key(s) " + join(unknown, ", ", true) + " (allowed: " + join(all, ", ", false) + ")");
  }
  for (const auto& k : required) {
    if (!v.contains(k)) throw fail(key_path(where, k), "required key is missing");
  }
  return v;
}

bool all_chars(const std::string& s, std::size_t from, bool (*ok)(char)) {
  for (std::size_t i = from; i < s.size(); ++i) {
    if (!ok(s[i])) return false;
  }
  return true;
}
bool is_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }
bool is_name_char(char c) { return is_alnum(c) || c == '.' || c == '_' || c == '-'; }
bool is_ident_char(char c) { return is_alnum(c) || c == '_'; }
bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool is_variant_char(char c) { return is_lower_alnum(c) || c == '_' || c == '-'; }
bool is_hex_lower(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

bool match_name(const std::string& s) { return !s.empty() && is_alnum(s[0]) && all_chars(s, 1, is_name_char); }
bool match_ident(const std::string& s) {
  return !s.empty() && ((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') || s[0] == '_') &&
         all_chars(s, 1, is_ident_char);
}
bool match_variant(const std::string& s) { return !s.empty() && is_lower_alnum(s[0]) && all_chars(s, 1, is_variant_char); }
bool match_sha(const std::string& s) { return s.size() == 64 && all_chars(s, 0, is_hex_lower); }

std::string str(const json& v, const std::string& where) {
  if (!v.is_string()) throw fail(where, "expected a string, got " + type_name(v));
  return v.get<std::string>();
}

std::string str_choice(const json& v, const std::string& where, const std::vector<std::string>& choices) {
  std::string s = str(v, where);
  for (const auto& c : choices) {
    if (s == c) return s;
  }
  throw fail(where, "expected one of " + join(choices, ", ", true) + ", got " + repr(s));
}

std::string str_match(const json& v, const std::string& where, bool (*ok)(const std::string&), const char* what) {
  std::string s = str(v, where);
  if (!ok(s)) throw fail(where, std::string("expected ") + what + ", got " + repr(s));
  return s;
}

std::int64_t integer(const json& v, const std::string& where, std::int64_t minimum = INT64_MIN) {
  if (!v.is_number_integer()) throw fail(where, "expected an integer, got " + type_name(v));
  if (v.is_number_unsigned() && v.get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX)) {
    throw fail(where, "integer out of range");
  }
  std::int64_t i = v.get<std::int64_t>();
  if (i < minimum) {
    throw fail(where, "expected an integer >= " + std::to_string(minimum) + ", got " + std::to_string(i));
  }
  return i;
}

std::string num_repr(double d) {
  std::ostringstream os;
  os << d;
  return os.str();
}

double number(const json& v, const std::string& where, double minimum = -INFINITY, double maximum = INFINITY) {
  if (!v.is_number() || !std::isfinite(v.get<double>())) throw fail(where, "expected a finite number, got " + v.dump());
  double d = v.get<double>();
  if (d < minimum) throw fail(where, "expected a number >= " + num_repr(minimum) + ", got " + num_repr(d));
  if (d > maximum) throw fail(where, "expected a number <= " + num_repr(maximum) + ", got " + num_repr(d));
  return d;
}

std::string relative_path(const json& v, const std::string& where) {
  std::string p = str(v, where);
  if (p.empty()) throw fail(where, "expected a file name, got an empty string");
  if (p.find('\\') != std::string::npos || p.find('\0') != std::string::npos) {
    throw fail(where, repr(p) + ": use '/' as the separator (no backslashes or NUL characters)");
  }
  bool drive = p.size() >= 2 && p[1] == ':' && ((p[0] >= 'a' && p[0] <= 'z') || (p[0] >= 'A' && p[0] <= 'Z'));
  if (p[0] == '/' || drive) {
    throw fail(where, repr(p) + " is an absolute path; files must be relative to the package folder");
  }
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (true) {
    std::size_t slash = p.find('/', start);
    parts.push_back(p.substr(start, slash == std::string::npos ? std::string::npos : slash - start));
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  for (const auto& part : parts) {
    if (part == "..") throw fail(where, repr(p) + " leaves the package folder ('..' is not allowed)");
  }
  for (const auto& part : parts) {
    if (part.empty() || part == ".") throw fail(where, repr(p) + " has an empty or '.' path component");
  }
  return p;
}

TensorSpec tensor(const json& v, const std::string& where) {
  const json& o = object(v, where, {"name", "dtype", "shape"});
  TensorSpec t;
  t.name = str_match(o["name"], where + ".name", match_ident, "a tensor name");
  t.dtype = str_choice(o["dtype"], where + ".dtype", {"float32", "float16", "int64", "int32", "uint8", "int8"});
  const json& shape = o["shape"];
  if (!shape.is_array() || shape.empty()) {
    throw fail(where + ".shape", "expected a non-empty array, got " + type_name(shape));
  }
  for (std::size_t i = 0; i < shape.size(); ++i) {
    const std::string w = where + ".shape[" + std::to_string(i) + "]";
    Dim d;
    if (shape[i].is_string()) {
      d.named = true;
      d.name = str_match(shape[i], w, match_ident, "a dimension name");
    } else if (shape[i].is_number_integer() && shape[i].get<std::int64_t>() >= 1) {
      d.value = shape[i].get<std::int64_t>();
    } else {
      throw fail(w, "expected a positive integer or a dimension name, got " + shape[i].dump());
    }
    t.shape.push_back(d);
  }
  return t;
}

std::vector<TensorSpec> tensors(const json& v, const std::string& where) {
  if (!v.is_array() || v.empty()) throw fail(where, "expected a non-empty array, got " + type_name(v));
  std::vector<TensorSpec> out;
  for (std::size_t i = 0; i < v.size(); ++i) out.push_back(tensor(v[i], where + "[" + std::to_string(i) + "]"));
  return out;
}

GraphSpec graph(const std::string& role, const json& v, const std::string& where) {
  const json& o = object(v, where, {"file", "sha256", "inputs", "outputs", "opset", "ir_version"});
  GraphSpec g;
  g.role = role;
  g.file = relative_path(o["file"], where + ".file");
  g.sha256 = str_match(o["sha256"], where + ".sha256", match_sha, "64 lowercase hex digits");
  g.inputs = tensors(o["inputs"], where + ".inputs");
  g.outputs = tensors(o["outputs"], where + ".outputs");
  g.opset = integer(o["opset"], where + ".opset", 7);
  g.ir_version = integer(o["ir_version"], where + ".ir_version", 3);
  return g;
}

VariantSpec variant(const std::string& name, const json& v, const std::string& where) {
  const json& o = object(v, where, {"graph", "file", "sha256", "precision", "method", "target", "error"}, {"calibration"});
  VariantSpec s;
  s.name = name;
  s.precision = str_choice(o["precision"], where + ".precision", {"fp16", "int8"});
  const json& err = object(o["error"], where + ".error", {"max_abs", "mean_abs", "ssim"});
  s.graph = str_choice(o["graph"], where + ".graph", {"embedder", "generator"});
  s.file = relative_path(o["file"], where + ".file");
  s.sha256 = str_match(o["sha256"], where + ".sha256", match_sha, "64 lowercase hex digits");
  s.method = str_choice(o["method"], where + ".method",
                        s.precision == "fp16" ? std::vector<std::string>{"cast"}
                                              : std::vector<std::string>{"static", "dynamic"});
  s.target = str_choice(o["target"], where + ".target", {"cpu", "gpu"});
  number(err["max_abs"], where + ".error.max_abs", 0);
  number(err["mean_abs"], where + ".error.mean_abs", 0);
  number(err["ssim"], where + ".error.ssim", -1, 1);
  if (o.contains("calibration") && !o["calibration"].is_null()) str(o["calibration"], where + ".calibration");
  return s;
}

void stats(const json& v, const std::string& where) {
  const json& o = object(v, where, {"max_abs", "mean_abs"});
  number(o["max_abs"], where + ".max_abs", 0);
  number(o["mean_abs"], where + ".mean_abs", 0);
}

void parity(const json& v) {
  const json& o = object(v, "parity", {"tolerance", "data"}, {"embedder", "generator", "pruned"});
  number(o["tolerance"], "parity.tolerance", 0);
  const json& d = object(o["data"], "parity.data", {"kind", "description", "samples"});
  str_choice(d["kind"], "parity.data.kind", {"real", "synthetic"});
  str(d["description"], "parity.data.description");
  integer(d["samples"], "parity.data.samples", 1);
  for (const char* role : kRoles) {
    if (o.contains(role)) stats(o[role], std::string("parity.") + role);
  }
  if (o.contains("pruned")) {  // generator attention blocks the export left out (export/prune.py)
    const json& p = object(o["pruned"], "parity.pruned", {"blocks", "tolerance", "max_abs", "mean_abs"});
    if (!p["blocks"].is_array()) throw fail("parity.pruned.blocks", "expected an array, got " + type_name(p["blocks"]));
    for (std::size_t i = 0; i < p["blocks"].size(); ++i)
      str(p["blocks"][i], "parity.pruned.blocks[" + std::to_string(i) + "]");
    for (const char* k : {"tolerance", "max_abs", "mean_abs"}) number(p[k], std::string("parity.pruned.") + k, 0);
  }
}

void training(const json& v) {
  const json& o = object(v, "training", {"data", "steps", "content_backbone"},
                         {"videos", "photos", "frames", "seconds", "finetune"});
  str(o["data"], "training.data");
  integer(o["steps"], "training.steps", 0);
  str(o["content_backbone"], "training.content_backbone");
  for (const char* k : {"videos", "photos", "frames"}) {
    if (o.contains(k)) integer(o[k], std::string("training.") + k, 0);
  }
  if (o.contains("seconds")) number(o["seconds"], "training.seconds", 0);
  if (o.contains("finetune")) {
    const json& ft = object(o["finetune"], "training.finetune", {"steps", "shots"});
    integer(ft["steps"], "training.finetune.steps", 0);
    integer(ft["shots"], "training.finetune.shots", 1);
  }
}

void producer(const json& v) {
  const json& o = object(v, "producer", {"name", "version"}, {"torch", "onnx", "onnxruntime"});
  for (auto it = o.begin(); it != o.end(); ++it) str(it.value(), "producer." + it.key());
}

void schema_version(const json& data) {
  if (!data.is_object()) {
    throw Error(Code::ModelPackage, "manifest: expected a JSON object at the top level, got " + type_name(data),
                "(top level)");
  }
  if (!data.contains("schema_version")) {
    throw fail("schema_version", "required key is missing (is this a talkinghead manifest.json?)");
  }
  const json& v = data["schema_version"];
  if (!v.is_number_integer()) throw fail("schema_version", "expected an integer, got " + type_name(v));
  const std::string got = v.dump();
  const bool negative = !v.is_number_unsigned() && v.get<std::int64_t>() < 0;
  const std::uint64_t n = negative ? 0 : v.get<std::uint64_t>();
  if (!negative && n >= kOldestSchemaVersion && n <= kSchemaVersion) return;
  if (!negative && n > kSchemaVersion) {
    throw Error(Code::ModelPackage,
                "manifest: schema_version " + got + " is newer than this talkinghead (" TALKINGHEAD_VERSION
                ") reads (schema_version " + std::to_string(kSchemaVersion) +
                "): upgrade talkinghead (the native library and the pip package), "
                "or re-export the model with this version's exporter (python -m export)",
                "schema_version");
  }
  throw Error(Code::ModelPackage, "manifest: schema_version " + got +
                                      " is not supported (this talkinghead reads schema_version 1, 2): re-export "
                                      "the model with the current exporter (python -m export)",
              "schema_version");
}

// manifest._references
void references(const json& v, int resolution, Manifest& m) {
  const json& o = object(v, "references", {"cap", "resolution", "selection"});
  const std::int64_t cap = integer(o["cap"], "references.cap", 1);
  if (cap > kMaxShots) {
    throw fail("references.cap", "expected at most " + std::to_string(kMaxShots) + ", got " + std::to_string(cap));
  }
  const std::int64_t res = integer(o["resolution"], "references.resolution", 8);
  if (res < resolution) {
    throw fail("references.resolution",
               "expected at least the output resolution " + std::to_string(resolution) + ", got " + std::to_string(res));
  }
  if (res > 8192) throw fail("references.resolution", "implausibly large: " + std::to_string(res));
  m.reference_cap = static_cast<int>(cap);
  m.reference_resolution = static_cast<int>(res);
  m.reference_selection = str_choice(o["selection"], "references.selection", {"farthest-landmarks"});
}

// manifest.expected_io + _check_io
void check_io(const GraphSpec& g, const Manifest& m) {
  const std::string& kind = m.kind;
  const int r = m.resolution, d = m.embedding_dim;
  struct Want { std::string name; std::vector<Dim> shape; };
  auto dyn = [](const char* n) { Dim x; x.named = true; x.name = n; return x; };
  auto fix = [](std::int64_t v) { Dim x; x.value = v; return x; };
  std::vector<Want> in, out;
  if (g.role == "embedder") {
    in = {{"image", {dyn("N"), fix(3), fix(r), fix(r)}}, {"landmarks", {dyn("N"), fix(68), fix(2)}}};
    out = {{"embedding", {dyn("N"), fix(d)}}};
  } else {
    in = {{"landmarks", {dyn("B"), fix(68), fix(2)}}};
    if (kind == "meta") in.push_back({"identity", {dyn("B"), fix(d)}});
    if (m.warp()) {
      const std::int64_t s = m.reference_resolution;
      in.push_back({"ref_images", {dyn("K"), fix(3), fix(s), fix(s)}});
      in.push_back({"ref_landmarks", {dyn("K"), fix(68), fix(2)}});
    }
    out = {{"image", {dyn("B"), fix(3), fix(r), fix(r)}}};
  }
  auto dims_repr = [](const std::vector<Dim>& s) {
    std::string o = "[";
    for (std::size_t i = 0; i < s.size(); ++i) {
      if (i) o += ", ";
      o += s[i].named ? repr(s[i].name) : std::to_string(s[i].value);
    }
    return o + "]";
  };
  const std::pair<const char*, std::pair<const std::vector<TensorSpec>*, const std::vector<Want>*>> groups[] = {
      {"inputs", {&g.inputs, &in}}, {"outputs", {&g.outputs, &out}}};
  for (const auto& grp : groups) {
    const std::string where = "graphs." + g.role + "." + grp.first;
    const auto& got = *grp.second.first;
    const auto& want = *grp.second.second;
    std::vector<std::string> got_names, want_names;
    for (const auto& t : got) got_names.push_back(t.name);
    for (const auto& t : want) want_names.push_back(t.name);
    if (got_names != want_names) {
      throw fail(where, "a " + repr(kind) + " package's " + g.role + " has " + grp.first + " [" +
                            join(want_names, ", ", true) + "], the manifest says [" + join(got_names, ", ", true) + "]");
    }
    for (std::size_t i = 0; i < got.size(); ++i) {
      const std::string w = where + "[" + std::to_string(i) + "]";
      if (got[i].dtype != "float32") throw fail(w + ".dtype", "expected 'float32', got " + repr(got[i].dtype));
      if (got[i].shape.size() != want[i].shape.size()) {
        throw fail(w + ".shape", "expected " + std::to_string(want[i].shape.size()) + " axes like " +
                                     dims_repr(want[i].shape) + ", got " + dims_repr(got[i].shape));
      }
      for (std::size_t j = 0; j < got[i].shape.size(); ++j) {
        const Dim& a = got[i].shape[j];
        const Dim& b = want[i].shape[j];
        const std::string wj = w + ".shape[" + std::to_string(j) + "]";
        if (!b.named && (a.named || a.value != b.value)) {
          throw fail(wj, "expected " + std::to_string(b.value) +
                             " (from resolution/embedding_dim/the landmark layout), got " +
                             (a.named ? repr(a.name) : std::to_string(a.value)));
        }
        if (b.named && !a.named) {
          throw fail(wj, "the batch axis must be dynamic (a name), got " + std::to_string(a.value));
        }
      }
    }
  }
}

Manifest validate(const json& data) {
  schema_version(data);
  const std::string top = "(top level)";
  const int version = data["schema_version"].get<int>();
  std::vector<std::string> required = {"schema_version", "name", "version", "size", "kind", "resolution",
                                       "embedding_dim", "landmarks", "image", "graphs", "producer"};
  std::vector<std::string> optional = {"variants", "parity", "training", "quality", "speed", "default_avatar"};
  if (version >= 2) {
    required.push_back("family");
    optional.push_back("references");
  }
  const json& o = object(data, top, required, optional);
  Manifest m;
  m.schema_version = version;
  m.kind = str_choice(o["kind"], "kind", {"meta", "personalised"});
  std::int64_t res = integer(o["resolution"], "resolution", 8);
  std::int64_t dim = integer(o["embedding_dim"], "embedding_dim", 1);
  if (res > 8192) throw fail("resolution", "implausibly large: " + std::to_string(res));
  if (dim > (1 << 20)) throw fail("embedding_dim", "implausibly large: " + std::to_string(dim));
  m.resolution = static_cast<int>(res);
  m.embedding_dim = static_cast<int>(dim);
  if (version >= 2) m.family = str_choice(o["family"], "family", {"adain", "warp"});
  if (m.warp()) {
    if (!o.contains("references")) {
      throw fail("references", "required key is missing (a 'warp' package states its reference cap)");
    }
    if (m.kind != "meta") {
      throw fail("kind", "a 'warp' package is 'meta' (personalised warp packages are not defined yet)");
    }
    references(o["references"], m.resolution, m);
  } else if (o.contains("references")) {
    throw fail("references", "only a 'warp' package has references");
  }

  const json& graphs = object(o["graphs"], "graphs", {"generator"}, {"embedder"});
  for (const char* role : kRoles) {
    if (graphs.contains(role)) m.graphs[role] = graph(role, graphs[role], std::string("graphs.") + role);
  }
  if (m.kind == "meta" && !m.graphs.count("embedder")) {
    throw fail("graphs.embedder", "required key is missing (a 'meta' package needs its embedder)");
  }
  if (m.kind == "personalised" && m.graphs.count("embedder")) {
    throw fail("graphs.embedder", "a 'personalised' package has no embedder (its identity is baked in)");
  }
  for (const char* role : kRoles) {
    if (m.graphs.count(role)) check_io(m.graphs[role], m);
  }

  if (o.contains("variants")) {
    const json& vs = o["variants"];
    if (!vs.is_object()) throw fail("variants", "expected an object, got " + type_name(vs));
    for (auto it = vs.begin(); it != vs.end(); ++it) {
      const std::string where = "variants." + it.key();
      if (!match_variant(it.key())) {
        throw fail(where, "expected a variant name (lowercase letters, digits, '_', '-'), got " + repr(it.key()));
      }
      if (it.key() == "fp32") throw fail(where, "'fp32' names the reference graphs themselves and cannot be a variant");
      VariantSpec v = variant(it.key(), it.value(), where);
      if (!m.graphs.count(v.graph)) throw fail(where + ".graph", "the package has no " + repr(v.graph) + " graph");
      m.variants[it.key()] = v;
    }
  }
  if (o.contains("default_avatar")) m.default_avatar = relative_path(o["default_avatar"], "default_avatar");
  if (o.contains("parity")) parity(o["parity"]);
  if (o.contains("training")) training(o["training"]);
  for (const char* k : {"quality", "speed"}) {
    if (o.contains(k) && !o[k].is_object()) throw fail(k, "expected an object, got " + type_name(o[k]));
  }
  producer(o["producer"]);
  m.name = str_match(o["name"], "name", match_name, "a model name (letters, digits, '.', '_', '-')");
  m.version = str_match(o["version"], "version", match_name, "a version string such as '0.1.0'");
  m.size = str_choice(o["size"], "size", {"lite", "paper", "tiny", "warp", "tiny-warp"});

  const json& lm = object(o["landmarks"], "landmarks", {"layout", "count", "coords", "crop"});
  const json& crop = object(lm["crop"], "landmarks.crop", {"scale", "offset_y"});
  m.crop_scale = number(crop["scale"], "landmarks.crop.scale");
  if (m.crop_scale <= 0) throw fail("landmarks.crop.scale", "expected a number > 0, got " + num_repr(m.crop_scale));
  str_choice(lm["layout"], "landmarks.layout", {"ibug68"});
  if (integer(lm["count"], "landmarks.count") != 68) {
    throw fail("landmarks.count", "expected 68, got " + lm["count"].dump());
  }
  str_choice(lm["coords"], "landmarks.coords", {"crop_normalised"});
  m.crop_offset_y = number(crop["offset_y"], "landmarks.crop.offset_y");
  try {  // the crop rule's own check (geometry.h), so a manifest accepted here gives a usable rule
    check_crop_rule(CropRule{m.crop_scale, m.crop_offset_y});
  } catch (const Error&) {
    throw fail("landmarks.crop.offset_y", "expected a number in (-1, 1), got " + num_repr(m.crop_offset_y));
  }

  const json& img = object(o["image"], "image", {"channels", "range", "layout"});
  const json& rng = img["range"];
  bool range_ok = rng.is_array() && rng.size() == 2 && rng[0].is_number() && rng[1].is_number() &&
                  rng[0].get<double>() == -1.0 && rng[1].get<double>() == 1.0;
  if (!range_ok) throw fail("image.range", "expected [-1.0, 1.0], got " + rng.dump());
  str_choice(img["channels"], "image.channels", {"rgb"});
  str_choice(img["layout"], "image.layout", {"nchw"});

  // _check_distinct_files
  std::vector<std::pair<std::string, std::string>> files;
  for (const auto& g : m.graphs) files.emplace_back("graphs." + g.first, g.second.file);
  for (const auto& v : m.variants) files.emplace_back("variants." + v.first, v.second.file);
  if (!m.default_avatar.empty()) files.emplace_back("default_avatar", m.default_avatar);
  std::map<std::string, std::string> seen;
  for (const auto& f : files) {
    if (f.second == "manifest.json") throw fail(f.first, "'manifest.json' cannot be a graph or avatar file");
    auto it = seen.find(f.second);
    if (it != seen.end()) throw fail(f.first, repr(f.second) + " is already named by " + it->second);
    seen[f.second] = f.first;
  }
  return m;
}

// ---- ONNX header ------------------------------------------------------------------------------

struct Truncated {};

struct Reader {
  std::FILE* f;
  long long pos = 0, size = 0;
  int byte() {
    int c = std::fgetc(f);
    if (c == EOF) throw Truncated{};
    ++pos;
    return c;
  }
  std::uint64_t varint() {
    std::uint64_t v = 0;
    for (int shift = 0;; shift += 7) {
      if (shift > 63) throw Error(Code::ModelPackage, "varint longer than 64 bits");
      int b = byte();
      v |= std::uint64_t(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
  }
  // n bytes are left (compared without adding: a length near 2^64 would overflow the sum)
  bool has(std::uint64_t n) const { return n <= static_cast<std::uint64_t>(size - pos); }
  void skip(std::uint64_t n) {
    if (!has(n)) throw Truncated{};
    if (std::fseek(f, static_cast<long>(n), SEEK_CUR) != 0) throw Truncated{};
    pos += static_cast<long long>(n);
  }
};

std::uint64_t varint_at(const std::string& buf, std::size_t& pos) {
  std::uint64_t v = 0;
  for (int shift = 0;; shift += 7) {
    if (shift > 63) throw Error(Code::ModelPackage, "varint longer than 64 bits");
    if (pos >= buf.size()) throw Truncated{};
    unsigned char b = static_cast<unsigned char>(buf[pos++]);
    v |= std::uint64_t(b & 0x7f) << shift;
    if (!(b & 0x80)) return v;
  }
}

// (field 1, field 2) of a small message: strings or varints.
void two_fields(const std::string& buf, std::string& f1, std::string& f2, std::uint64_t& v2) {
  std::size_t pos = 0;
  while (pos < buf.size()) {
    std::uint64_t key = varint_at(buf, pos);
    std::uint64_t num = key >> 3, wire = key & 7;
    if (wire == 0) {
      std::uint64_t v = varint_at(buf, pos);
      if (num == 2) v2 = v;
    } else if (wire == 2) {
      std::uint64_t n = varint_at(buf, pos);
      if (n > buf.size() - pos) throw Truncated{};  // not pos + n: it can wrap
      std::string s = buf.substr(pos, n);
      pos += n;
      if (num == 1) f1 = s;
      if (num == 2) f2 = s;
    } else if (wire == 1) {
      pos += 8;
    } else if (wire == 5) {
      pos += 4;
    } else {
      throw Error(Code::ModelPackage, "unsupported protobuf wire type " + std::to_string(wire));
    }
    if (pos > buf.size()) throw Truncated{};
  }
}

std::string base_name(const std::string& path) {
  std::size_t s = path.find_last_of('/');
  return s == std::string::npos ? path : path.substr(s + 1);
}

}  // namespace

// talkinghead.package.parse_manifest_json's nesting bound: brackets counted outside strings,
// before a parser sees them (Python's recurses; the corpus holds a case deeper than this).
constexpr int kMaxJsonDepth = 32;

void check_json_depth(const std::string& text) {
  int depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  if (deepest > kMaxJsonDepth) {
    throw Error(Code::ModelPackage, "manifest.json nests " + std::to_string(deepest) + " levels deep (a manifest has at most " +
                                        std::to_string(kMaxJsonDepth) + ")", "(json)");
  }
}

Manifest parse_manifest(const std::string& text) {
  check_json_depth(text);
  json data;
  try {
    data = json::parse(text);
  } catch (const json::exception& e) {
    throw Error(Code::ModelPackage, std::string("manifest.json is not valid JSON: ") + e.what(), "(json)");
  }
  return validate(data);
}

OnnxHeader read_onnx_header(const std::string& path) {
  const std::string name = base_name(path);
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(platform::open_file(path, "rb"), &std::fclose);
  if (!f) throw Error(Code::NotFound, "cannot open " + path + ": " + std::strerror(errno));
  const long long size = platform::file_size(path);
  if (size < 0) throw Error(Code::ModelPackage, "cannot stat " + path);
  Reader r{f.get(), 0, size};
  OnnxHeader h;
  try {
    while (r.pos < r.size) {
      std::uint64_t key = r.varint();
      std::uint64_t num = key >> 3, wire = key & 7;
      if (wire == 0) {
        std::uint64_t v = r.varint();
        if (num == 1) h.ir_version = static_cast<std::int64_t>(v);
      } else if (wire == 2) {
        std::uint64_t n = r.varint();
        if (!r.has(n)) throw Truncated{};
        if (num == 8 || num == 14) {
          if (n > (16u << 20)) {
            throw Error(Code::ModelPackage, name + " is not an ONNX model (field " + std::to_string(num) +
                                                " is implausibly large)");
          }
          std::string buf(n, '\0');
          if (n && std::fread(&buf[0], 1, n, r.f) != n) throw Truncated{};
          r.pos += static_cast<long long>(n);
          std::string f1, f2;
          std::uint64_t v2 = 0;
          two_fields(buf, f1, f2, v2);
          if (num == 8) {
            h.opsets[f1] = static_cast<std::int64_t>(v2);
          } else {
            h.metadata[f1] = f2;
          }
        } else {
          r.skip(n);
        }
      } else if (wire == 1) {
        r.skip(8);
      } else if (wire == 5) {
        r.skip(4);
      } else {
        throw Error(Code::ModelPackage,
                    name + " is not an ONNX model (unsupported protobuf wire type " + std::to_string(wire) + ")");
      }
    }
    if (r.pos != r.size) throw Truncated{};
  } catch (const Truncated&) {
    throw Error(Code::ModelPackage, name + " is truncated or not an ONNX model");
  }
  if (h.ir_version <= 0) throw Error(Code::ModelPackage, name + " is not an ONNX model (it has no ir_version)");
  return h;
}

const std::string& Package::graph_path(const std::string& role, const std::string& variant) const {
  if (!manifest.graphs.count(role)) {
    throw Error(Code::ModelPackage, "package '" + manifest.name + "' (" + manifest.kind + ") has no '" + role + "' graph");
  }
  if (variant.empty() || variant == "fp32") return files.at("graphs." + role);
  auto it = manifest.variants.find(variant);
  if (it == manifest.variants.end()) {
    std::string have = "fp32";
    for (const auto& v : manifest.variants) have += ", " + v.first;
    throw Error(Code::ModelPackage, "package '" + manifest.name + "' has no variant '" + variant + "' (it has " + have + ")");
  }
  if (it->second.graph != role) {
    throw Error(Code::ModelPackage, "variant '" + variant + "' of package '" + manifest.name + "' is of the '" +
                                        it->second.graph + "' graph, not the '" + role + "' graph");
  }
  return files.at("variants." + variant);
}

namespace {

std::string resolve_inside(const std::string& folder, const std::string& rel, const std::string& where) {
  bool missing = false;
  std::string why;
  const std::string resolved = platform::canonical_path(folder + "/" + rel, &missing, &why);
  if (resolved.empty()) {
    if (missing) throw Error(Code::NotFound, where + ": '" + rel + "' is missing from the package folder " + folder);
    throw Error(Code::ModelPackage, where + ": '" + rel + "' cannot be resolved (" + why + ")");
  }
  if (resolved.compare(0, folder.size() + 1, folder + "/") != 0) {
    throw Error(Code::ModelPackage, where + ": '" + rel + "' resolves to " + resolved + ", outside the package folder " +
                                        folder + " (symlinks out of the package are refused)");
  }
  if (!platform::is_regular_file(resolved)) {
    throw Error(Code::ModelPackage, where + ": '" + rel + "' is not a regular file");
  }
  return resolved;
}

void check_header(const std::string& path, const std::string& role, const GraphSpec* graph, const VariantSpec* variant) {
  const std::string name = base_name(path);
  OnnxHeader h = read_onnx_header(path);
  auto get = [&](const char* k) -> std::string {
    auto it = h.metadata.find(k);
    return it == h.metadata.end() ? "None" : "'" + it->second + "'";
  };
  if (get("talkinghead.role") != "'" + role + "'") {
    throw Error(Code::ModelPackage, name + ": its ONNX metadata says talkinghead.role=" + get("talkinghead.role") +
                                        ", the manifest lists it as the '" + role + "' graph");
  }
  if (variant && get("talkinghead.variant") != "'" + variant->name + "'") {
    throw Error(Code::ModelPackage, name + ": its ONNX metadata says talkinghead.variant=" +
                                        get("talkinghead.variant") + ", the manifest lists it as variant '" +
                                        variant->name + "'");
  }
  if (graph) {
    if (h.ir_version != graph->ir_version) {
      throw Error(Code::ModelPackage, name + ": IR version " + std::to_string(h.ir_version) + ", the manifest says " +
                                          std::to_string(graph->ir_version));
    }
    auto it = h.opsets.find("");
    if (it == h.opsets.end()) it = h.opsets.find("ai.onnx");
    std::int64_t opset = it == h.opsets.end() ? -1 : it->second;
    if (opset != graph->opset) {
      throw Error(Code::ModelPackage, name + ": opset " + (opset < 0 ? std::string("None") : std::to_string(opset)) +
                                          ", the manifest says " + std::to_string(graph->opset));
    }
  }
}

}  // namespace

Package load_package(const std::string& folder_in, bool verify_hashes) {
  if (folder_in.empty() || !platform::is_directory(folder_in)) {
    throw Error(Code::NotFound, "model package folder not found: " + folder_in);
  }
  Package pkg;
  pkg.folder = platform::canonical_path(folder_in, nullptr, nullptr);
  if (pkg.folder.empty()) throw Error(Code::NotFound, "model package folder not found: " + folder_in);
  const std::string mpath = pkg.folder + "/manifest.json";
  if (!platform::is_regular_file(mpath)) {
    throw Error(Code::NotFound, pkg.folder + " is not a model package: it has no manifest.json");
  }
  if (platform::file_size(mpath) > (4 << 20)) throw Error(Code::ModelPackage, mpath + ": implausibly large for a manifest");
  std::ifstream in(std::filesystem::u8path(mpath), std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    pkg.manifest = parse_manifest(ss.str());
  } catch (const Error& e) {
    throw Error(e.code(), mpath + ": " + e.what());
  }
  const Manifest& m = pkg.manifest;
  for (const auto& g : m.graphs) pkg.files["graphs." + g.first] = resolve_inside(pkg.folder, g.second.file, "graphs." + g.first);
  for (const auto& v : m.variants) {
    pkg.files["variants." + v.first] = resolve_inside(pkg.folder, v.second.file, "variants." + v.first);
  }
  if (!m.default_avatar.empty()) pkg.files["default_avatar"] = resolve_inside(pkg.folder, m.default_avatar, "default_avatar");
  if (verify_hashes) {
    std::vector<std::pair<std::string, std::string>> records;
    for (const auto& g : m.graphs) records.emplace_back("graphs." + g.first, g.second.sha256);
    for (const auto& v : m.variants) records.emplace_back("variants." + v.first, v.second.sha256);
    for (const auto& r : records) {
      const std::string& path = pkg.files.at(r.first);
      std::string actual = sha256_file(path);
      if (actual != r.second) {
        throw Error(Code::ModelPackage, base_name(path) + ": sha256 mismatch (" + r.first + "): the file hashes to " +
                                            actual + ", the manifest says " + r.second +
                                            ". The file was modified or corrupted: restore it or re-export the package");
      }
    }
  }
  for (const auto& g : m.graphs) check_header(pkg.files.at("graphs." + g.first), g.first, &g.second, nullptr);
  for (const auto& v : m.variants) check_header(pkg.files.at("variants." + v.first), v.second.graph, nullptr, &v.second);
  return pkg;
}

}  // namespace th
