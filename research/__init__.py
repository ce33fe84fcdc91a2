"""The research wing: selection tooling that imports :mod:`fsad` and is never imported by it.

- :mod:`research.synthtask`: synthetic few-shot tasks, a label-free selection signal;
- :mod:`research.selection`: scores candidate recipes on the label-free signals
  (``python -m research.selection --help``);
- :mod:`research.diagnose_prototypes`: a diagnosis of the paper method's prototypes.

The selection rounds 1-20 and the descriptor kinds they rejected are kept at the git tag
``selection-rounds-1-20`` (commit 3480f9b); the book's appendix reads their committed results.
"""
