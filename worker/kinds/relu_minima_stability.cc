// Experiment kind `relu_minima_stability`: being written (see issue 6).
