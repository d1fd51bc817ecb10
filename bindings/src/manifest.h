// The model package manifest (manifest.json, schema_version 2; 1 still read) and the package folder.
// A port of sdk/talkinghead/manifest.py and package.py: the same rules in the same order, so a
// package the SDK refuses is refused here, with the same "manifest: <key>: <problem>" messages.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace th {

constexpr int kSchemaVersion = 2;     // what the exporter writes
constexpr int kOldestSchemaVersion = 1;  // still read: an 'adain' package without 'family'

struct Dim {
  bool named = false;  // a dynamic axis ("N", "B")
  std::int64_t value = 0;
  std::string name;
};

struct TensorSpec {
  std::string name, dtype;
  std::vector<Dim> shape;
};

struct GraphSpec {
  std::string role, file, sha256;
  std::vector<TensorSpec> inputs, outputs;
  std::int64_t opset = 0, ir_version = 0;
};

struct VariantSpec {
  std::string name, graph, file, sha256, precision, method, target;
};

struct Manifest {
  int schema_version = kSchemaVersion;
  std::string name, version, size, kind;
  int resolution = 0;
  int embedding_dim = 0;
  double crop_scale = 1.7, crop_offset_y = -0.1;
  std::map<std::string, GraphSpec> graphs;      // "embedder" (meta only), "generator"
  std::map<std::string, VariantSpec> variants;  // "int8", "fp16", ...
  std::string default_avatar;                   // "" when absent
  // Version 2: the family of the generator ("adain": landmarks + identity; "warp": also the
  // avatar's reference shots, ref_images [K,3,S,S] + ref_landmarks [K,68,2]).
  std::string family = "adain";
  int reference_cap = 0;         // warp: an avatar keeps at most this many shots
  int reference_resolution = 0;  // warp: S, the side of the reference crops
  std::string reference_selection;  // warp: "farthest-landmarks" (references.h)
  bool warp() const { return family == "warp"; }
  bool personalised() const { return kind == "personalised"; }
};

// Validate manifest.json text; throws th::Error(ModelPackage) naming the first offending key.
Manifest parse_manifest(const std::string& json_text);

// What an ONNX file's top level says (read without the weights: see package.py).
struct OnnxHeader {
  std::int64_t ir_version = 0;
  std::map<std::string, std::int64_t> opsets;
  std::map<std::string, std::string> metadata;
};
OnnxHeader read_onnx_header(const std::string& path);

// A package folder: its manifest and the resolved paths of the files it names.
struct Package {
  std::string folder;  // absolute, symlinks resolved
  Manifest manifest;
  std::map<std::string, std::string> files;  // "graphs.generator", "variants.int8" -> path
  // The file of a graph or of one of its variants ("" or "fp32": the reference graph).
  const std::string& graph_path(const std::string& role, const std::string& variant) const;
};

// Read, validate and verify a package folder (sha256 of every graph unless verify_hashes is
// false; ONNX header role stamp, IR version and opset against the manifest).
Package load_package(const std::string& folder, bool verify_hashes);

}  // namespace th
