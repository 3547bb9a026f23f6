#include "worker/numerics/hessian.h"
