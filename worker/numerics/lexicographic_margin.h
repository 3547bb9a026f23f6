// Numerical core of the experiment kind `lexicographic_margin`: being written (see issue 5).
#pragma once
