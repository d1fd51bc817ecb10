// Shared helpers of the C++ tests: the conformance corpus (contract/: packages, vectors, manifests;
// written by contract/make_vectors.py, read here with no Python) and raw test vectors.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

extern std::string g_contract;  // --contract=DIR (ctest passes the repository's contract/)

// A file of the corpus, e.g. contract_path("manifests/cases.json").
inline std::string contract_path(const std::string& rel) { return g_contract + "/" + rel; }
// A test package or a file in one, e.g. package_path("model"), package_path("warp/manifest.json").
inline std::string package_path(const std::string& rel) { return contract_path("packages/" + rel); }

inline nlohmann::json vector_index() {
  std::ifstream in(contract_path("vectors/index.json"));
  if (!in) throw std::runtime_error("no test vectors in " + g_contract + ": pass --contract=DIR (the repository's contract/)");
  return nlohmann::json::parse(in);
}

// A raw little-endian vector named in vectors/index.json; shape returned through `shape`.
template <typename T>
std::vector<T> load_vector(const std::string& name, std::vector<long long>* shape = nullptr) {
  nlohmann::json idx = vector_index();
  const auto& e = idx.at(name);
  if (shape) *shape = e.at("shape").get<std::vector<long long>>();
  std::ifstream in(contract_path("vectors/" + e.at("file").get<std::string>()), std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string bytes = ss.str();
  if (bytes.size() % sizeof(T)) throw std::runtime_error(name + ": size is not a multiple of the element size");
  std::vector<T> out(bytes.size() / sizeof(T));
  std::memcpy(out.data(), bytes.data(), bytes.size());
  return out;
}

// The largest difference in levels between two images of the same size.
inline int max_diff(const std::vector<std::uint8_t>& a, const std::vector<std::uint8_t>& b) {
  if (a.size() != b.size()) throw std::runtime_error("max_diff: images of different sizes");
  int worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(int(a[i]) - int(b[i])));
  return worst;
}

// One paste-back case of the corpus (index "pastes"): the crop, its image and the expected frame.
struct PasteCase {
  std::string name;
  std::vector<double> crop;
  std::vector<std::uint8_t> crop_image, want;
  int resolution = 0;
  double feather = 0;
};

inline PasteCase load_paste_case(const nlohmann::json& c) {
  PasteCase p;
  p.name = c.at("name").get<std::string>();
  p.crop = load_vector<double>(p.name + "_crop");
  p.crop_image = load_vector<std::uint8_t>(p.name + "_crop_image");
  p.want = load_vector<std::uint8_t>(p.name + "_out");
  p.resolution = c.at("resolution").get<int>();
  p.feather = c.at("feather").get<double>();
  return p;
}

inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A name no other test process uses at the same time (temporary files and folders).
inline std::string unique_name(const std::string& prefix) {
  static const std::string tag = std::to_string(std::random_device{}());
  return prefix + "_" + tag;
}
