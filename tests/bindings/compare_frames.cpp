// compare_frames GOT_DIR WANT_DIR MAX_DIFF: every frame_NNNN.ppm (binary P6) of WANT_DIR has a twin
// in GOT_DIR of the same size, none beyond it, and no channel differs by more than MAX_DIFF levels.
// ctest uses it to hold the C example's output to the frames contract/make_vectors.py wrote.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

struct Ppm {
  int width = 0, height = 0;
  std::vector<unsigned char> pixels;
};

bool read_ppm(const fs::path& path, Ppm& out) {
  std::ifstream in(path, std::ios::binary);
  std::string magic;
  int maxval = 0;
  if (!(in >> magic >> out.width >> out.height >> maxval) || magic != "P6" || maxval != 255) return false;
  in.get();  // the one whitespace byte after the header
  out.pixels.resize(static_cast<std::size_t>(out.width) * out.height * 3);
  return static_cast<bool>(in.read(reinterpret_cast<char*>(out.pixels.data()), static_cast<std::streamsize>(out.pixels.size())));
}

std::vector<fs::path> frames(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("frame_", 0) == 0 && e.path().extension() == ".ppm") out.push_back(e.path().filename());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: compare_frames GOT_DIR WANT_DIR MAX_DIFF\n";
    return 2;
  }
  const fs::path got_dir = argv[1], want_dir = argv[2];
  const int limit = std::atoi(argv[3]);
  std::error_code ec;
  const auto want = frames(want_dir), got = fs::is_directory(got_dir, ec) ? frames(got_dir) : std::vector<fs::path>{};
  if (want.empty() || got != want) {
    std::cerr << "FAIL: " << got.size() << " frames in " << got_dir << ", " << want.size() << " expected (names must match)\n";
    return 1;
  }
  int worst = 0;
  for (const auto& name : want) {
    Ppm a, b;
    if (!read_ppm(got_dir / name, a) || !read_ppm(want_dir / name, b)) {
      std::cerr << "FAIL: " << name << " is not a binary PPM\n";
      return 1;
    }
    if (a.width != b.width || a.height != b.height) {
      std::cerr << "FAIL: " << name << " is " << a.width << "x" << a.height << ", expected " << b.width << "x" << b.height << "\n";
      return 1;
    }
    for (std::size_t i = 0; i < a.pixels.size(); ++i) worst = std::max(worst, std::abs(int(a.pixels[i]) - int(b.pixels[i])));
  }
  std::cout << "frames vs contract: max abs difference " << worst << " over " << want.size() << " frames\n";
  return worst <= limit ? 0 : 1;
}
