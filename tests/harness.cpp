#include "harness.h"

#include <cstdlib>

namespace mpsnn::test {

// Format: one case per block.
//   case <name>
//   scalar <key> <value>
//   array <key> <rank> <d0> ... <dk-1> then the values, whitespace separated
//   end
std::vector<TorchCase> readTorchCases(const std::string& file) {
  const char* dir = std::getenv("MPSNN_TORCH_CASES");
  std::vector<TorchCase> cases;
  if (!dir) {
    ADD_FAILURE() << "MPSNN_TORCH_CASES is not set (run the tests through ctest)";
    return cases;
  }
  std::string path = std::string(dir) + "/" + file;
  std::ifstream in(path);
  if (!in) {
    ADD_FAILURE() << "cannot open PyTorch cases " << path;
    return cases;
  }
  std::string word;
  TorchCase current;
  while (in >> word) {
    if (word == "case") {
      current = TorchCase();
      in >> current.name;
    } else if (word == "scalar") {
      std::string key;
      double v;
      in >> key >> v;
      current.scalars[key] = v;
    } else if (word == "array") {
      std::string key;
      int rank;
      in >> key >> rank;
      std::vector<int64_t> shape(static_cast<size_t>(rank));
      size_t count = 1;
      for (auto& d : shape) {
        in >> d;
        count *= size_t(d);
      }
      std::vector<double> values(count);
      for (auto& v : values) {
        std::string tok;
        in >> tok;
        v = std::strtod(tok.c_str(), nullptr);  // accepts nan / inf
      }
      current.shapes[key] = shape;
      current.arrays[key] = std::move(values);
    } else if (word == "end") {
      cases.push_back(std::move(current));
    } else {
      ADD_FAILURE() << "bad token '" << word << "' in " << path;
      break;
    }
  }
  if (cases.empty()) ADD_FAILURE() << "no cases in " << path;
  return cases;
}

}  // namespace mpsnn::test
