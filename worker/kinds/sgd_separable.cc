// Experiment kind `sgd_separable`: being written (see issue 5).
