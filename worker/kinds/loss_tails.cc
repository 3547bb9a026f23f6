// Experiment kind `loss_tails`: being written (see issue 5).
