// Numerical core of the experiment kind `loss_tails`: being written (see issue 5).
#pragma once
