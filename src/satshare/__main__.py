"""``python -m satshare`` runs the command line.

The import is inside the guard: a worker process that ``ledger verify`` spawns imports this
module too (as ``__mp_main__``), and needs none of the CLI (half a second and 17 MiB each).
"""

if __name__ == "__main__":
    from satshare.cli import main

    main()
