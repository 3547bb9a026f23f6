// Experiment kind `gfs_sharpness`: being written (see issue 6).
