#include "worker/numerics/interpolator_fast.h"
#include <stdexcept>
namespace gdlab::interp {
struct FastTwoLayerKernel::Impl {};
bool FastTwoLayerKernel::supports(const FastTwoLayerProblem&) { return false; }
FastTwoLayerKernel::FastTwoLayerKernel(const FastTwoLayerProblem&) : impl_(std::make_unique<Impl>()) {}
FastTwoLayerKernel::~FastTwoLayerKernel() = default;
void FastTwoLayerKernel::run(std::uint64_t, std::uint64_t, int, std::int64_t*, std::vector<std::pair<std::uint64_t, int>>&,
                             std::vector<std::uint64_t>&) const { throw std::logic_error("stub"); }
}
