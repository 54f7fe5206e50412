"""``python -m metabac``: the ``metabac`` command line."""

from metabac.cli import main

if __name__ == "__main__":
    main()
