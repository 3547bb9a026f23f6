#include "worker/numerics/init_shape.h"
