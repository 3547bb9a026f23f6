#include "worker/numerics/async_sgd.h"
