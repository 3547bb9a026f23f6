// Numerical core of the experiment kind `sgd_separable`: being written (see issue 5).
#pragma once
