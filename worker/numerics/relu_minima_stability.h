// Numerical core of the experiment kind `relu_minima_stability`: being written (see issue 6).
#pragma once
