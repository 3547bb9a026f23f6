#include "worker/numerics/relu_minima_stability.h"
