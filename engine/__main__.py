"""``python -m engine`` is the ``clusterbus`` command."""

from engine.cli import main

main()
