// Numerical core of the experiment kind `gfs_sharpness`: being written (see issue 6).
#pragma once
