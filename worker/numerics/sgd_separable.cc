#include "worker/numerics/sgd_separable.h"
