"""The series' own tooling, beside the package the notebooks import (not installed with it).

colab.py: the repository's location, the Colab badges (``python tools/colab.py badges``)
and the setup cell copied into every notebook. ``make execute`` runs the notebooks with
nbconvert (see the Makefile).
"""
