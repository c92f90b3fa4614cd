"""Soups: versions merged weight by weight into a new version (docs/soups.md).

    methods.py   how the tensors of one name become one: linear here, the rest mergekit's
    tensors.py   a version's weights read and written one tensor at a time
    soup.py      the parents and their checks, a soup's recipe, writing it as a version
    search.py    held-out evaluation in memory: the α sweep and the greedy soup
    build.py     `make_soup`, the command's job as one call
"""

from renewlm.merge.build import make_soup
from renewlm.merge.methods import available as available_methods

__all__ = ["make_soup", "available_methods"]
