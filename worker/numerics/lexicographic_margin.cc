#include "worker/numerics/lexicographic_margin.h"
