from satshare.cli import main

if __name__ == "__main__":  # not when a worker process (ledger verify) imports it
    main()
