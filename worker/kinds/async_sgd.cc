// Experiment kind `async_sgd`: being written (see issue 4).
