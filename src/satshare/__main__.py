from satshare.cli import main

main()
