#include "worker/numerics/loss_tails.h"
