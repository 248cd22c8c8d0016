from cg.cli import main

main()
