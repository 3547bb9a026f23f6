// Numerical core of the experiment kind `init_shape`: being written (see issue 5).
#pragma once
