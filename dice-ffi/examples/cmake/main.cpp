// The same through the C++17 wrapper, linked statically.
#include <cstdint>
#include <cstdio>
#include <vector>

#include "dice.hpp"

int main() {
  const std::vector<std::uint8_t> reference{0, 0, 1, 1, 1, 2, 2, 2, 2, 0, 0, 1};
  const std::vector<std::uint8_t> prediction{0, 1, 1, 1, 0, 2, 2, 2, 0, 0, 0, 1};
  try {
    const auto counts = dice::label_confusion(prediction, reference, 3);
    for (std::size_t l = 0; l < counts.size(); l++) {
      std::printf("label %zu dice %.6f\n", l, dice::metric(counts[l], DICE_METRIC_DICE).value_or(-1.0));
    }
  } catch (const dice::Error& e) {
    std::fprintf(stderr, "dice: %s\n", e.what());
    return 1;
  }
  return 0;
}
