// Experiment kind `init_shape`: being written (see issue 5).
