from stratonet.cli import main

main()
