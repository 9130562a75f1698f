"""A module nothing imports but one test (``test_process.py``): a stage's function from a
module the zygotes' root process has not imported yet."""


def double(x):
    """Twice ``x``."""
    return 2 * x
