// libFuzzer target: arbitrary bytes as campaign spec text (docs/fuzzing.md).
// A gdlab::InputError (bad spec, with its file:line:field message) is the expected answer to bad
// input; any other exception escaping, a crash, a sanitizer report or a hang is a bug.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "common/campaign.h"
#include "common/errors.h"

namespace {
// Relative input files (CSV datasets) resolve against this directory and are confined to it, as
// `gdlab serve` confines them; run.sh points it at tests/data.
std::string spec_dir() {
  const char* dir = std::getenv("GDLAB_FUZZ_SPEC_DIR");
  return dir != nullptr ? dir : ".";
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::string dir = spec_dir();
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const gdlab::Campaign campaign = gdlab::parse_campaign(text, "fuzz.textproto", dir, {dir});
    (void)campaign.task_lines();
  } catch (const gdlab::InputError&) {
    // Expected: a rejected spec.
  }
  return 0;
}
