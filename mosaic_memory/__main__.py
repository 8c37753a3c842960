from mosaic_memory.cli.main import main

main()
