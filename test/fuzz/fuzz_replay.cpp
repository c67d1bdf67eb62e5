// Replays a fuzz target's corpus without libFuzzer: every file named on the
// command line, or found (sorted) in a directory named there, goes through
// LLVMFuzzerTestOneInput once. A failed check aborts; no file at all fails,
// so a wrong corpus path cannot pass silently.

#include "fuzz_common.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  std::vector<fs::path> files;
  for (int i = 1; i < argc; ++i) {
    fs::path p{argv[i]};
    if (fs::is_directory(p)) {
      for (auto& e : fs::directory_iterator{p})
        if (e.is_regular_file())
          files.push_back(e.path());
    } else {
      files.push_back(p);
    }
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) {
    std::cerr << "fuzz_replay: no input files\n";
    return 1;
  }
  for (auto& f : files) {
    std::ifstream in{f, std::ios::binary};
    if (!in) {
      std::cerr << "fuzz_replay: cannot read " << f << '\n';
      return 1;
    }
    std::string bytes{std::istreambuf_iterator<char>{in},
                      std::istreambuf_iterator<char>{}};
    std::cerr << "replay " << f.filename().string() << " (" << bytes.size()
              << " bytes)\n";
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()),
                           bytes.size());
  }
  std::cout << "fuzz_replay: " << files.size() << " inputs, no failure\n";
  return 0;
}
