"""The runs that build what the repository ships, kept apart from the library that notebooks teach.

* :mod:`.quadrants`: the paper's quadrant-completion experiment from scratch (notebook 7's
  results and weights): ``python -m cvae_utils.experiments.quadrants run``;
* :mod:`.pretrained`: retrain the shipped label CVAEs and the digit classifier and rewrite
  ``data/pretrained``: ``python -m cvae_utils.experiments.pretrained build``;
* :mod:`.label_quality`: the sample quality of the shipped label CVAEs (accuracy, class-conditional
  Fréchet distance, S = 1,000 test log-likelihood): ``python -m cvae_utils.experiments.label_quality``.

``import cvae_utils`` does not import this subpackage.
"""
