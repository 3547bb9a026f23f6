// Experiment kind `lexicographic_margin`: being written (see issue 5).
