#include "worker/numerics/gfs_sharpness.h"
