"""``python -m mltrail``."""

from mltrail.cli import main

main()
